"""Energy models: one interface for everything that turns crystal structures into energies.

An *energy model* takes structures (:class:`lib.structures.Crystal` or pymatgen ``Structure``) and returns
energies per atom, on a scale it names:

- ``scale = "total"``: total energies (eV/atom) on the Materials Project's corrected scale (PBE/PBE+U with
  MP2020 anion and U corrections), e.g. a universal interatomic potential trained on MP's relaxations. An
  electrode's voltage then needs the working ion's metal from **the same model** (:meth:`EnergyModel.ion_energy`);
  a hull needs every phase of the chemical system, elements included, from the same model.
- ``scale = "formation"``: formation energies (eV/atom, elements at 0), e.g. this compendium's CGCNN
  ensembles; the ion's metal is 0 by definition.

Energies of the two scales are never mixed in one voltage or one hull: :func:`check_same_scale` refuses it.

A model that can also relax (``can_relax``) gives energies, forces and stresses of many structures in one
call (:meth:`UniversalPotential.efs`), which :mod:`lib.cathodes.relax` uses to relax many structures at once.

**CHGNet** (:class:`CHGNet`, Deng et al., Nat. Mach. Intell. 2023; PyPI ``chgnet``, BSD licence; the
pretrained weights of version 0.3.0 are inside its wheel, so it works offline). It was trained on MPtrj, the
Materials Project's own relaxation trajectories, with energies **already corrected by MP2020** (the
compatibility scheme is part of its training targets): its energies are directly comparable to MP's
corrected energies, and applying ``MaterialsProject2020Compatibility`` to them again would count the
corrections twice. Never do that. Because it learned MP's relaxations, a comparison against MP's voltages is
not a leak-free test of it.

A second universal potential is one class here with the same four members (``name``, ``scale``,
``can_relax``, ``energies`` / ``efs``) registered in :data:`POTENTIALS`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
from ase import units
from ase.stress import voigt_6_to_full_3x3_stress
from pymatgen.core import Lattice, Structure
from pymatgen.entries.compatibility import MaterialsProject2020Compatibility
from pymatgen.entries.computed_entries import ComputedStructureEntry
from pymatgen.io.ase import AseAtomsAdaptor

from lib.cathodes.electrodes import pair_table
from lib.cathodes.relax import DEFAULT, relax, static_energies
from lib.data.electrodes import load_electrode_pairs, pair_ids
from lib.devices import pick_device
from lib.structures import Crystal


class EnergyModelError(ValueError):
    """Energies that cannot be combined, or a model that cannot do what was asked."""


@runtime_checkable
class EnergyModel(Protocol):
    """Structures in, energies per atom out (module docstring)."""

    name: str
    scale: str  # "total" | "formation"
    can_relax: bool

    def energies(self, structures: Sequence, progress: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """(energy per atom in eV/atom, its standard deviation or None) of each structure."""
        ...

    def ion_energy(self, ion: str) -> float:
        """The energy per atom of the working ion's metal on this model's scale."""
        ...


def energy_model(model) -> EnergyModel:
    """``model`` as an :class:`EnergyModel`: itself when it is one (a universal potential, a
    :class:`FormationEnergyModel`), a formation-energy predictor ``predict(crystals) -> (mean, std or None)``
    wrapped in a :class:`FormationEnergyModel`. The screen, the benchmark and ``lib.predict --voltage`` take their
    energies through this one protocol."""
    if isinstance(model, EnergyModel):
        return model
    if callable(model):
        return FormationEnergyModel(model, name=getattr(model, "__name__", "predictor"))
    raise EnergyModelError(f"{model!r} is neither an energy model nor a formation-energy predictor")


def check_same_scale(*models: EnergyModel) -> str:
    """The common energy scale of ``models``; :class:`EnergyModelError` if they differ."""
    scales = {m.scale for m in models}
    if len(scales) != 1:
        raise EnergyModelError(
            "energies on different scales cannot be combined in one voltage or hull: "
            + ", ".join(f"{m.name} ({m.scale})" for m in models)
        )
    return scales.pop()


# ----------------------------------------------------------------------------------------------
# the GNN ensembles of this compendium as energy models
# ----------------------------------------------------------------------------------------------


class FormationEnergyModel:
    """A formation-energy predictor ``predict(crystals) -> (mean, std or None)`` (eV/atom) as an energy model,
    e.g. the shipped CGCNN ensemble (:func:`lib.cathodes.benchmark.checkpoint_predictor`). Calling the model is
    calling ``predict``; ``records`` / ``checkpoints`` say what it was trained on and where it lies."""

    scale = "formation"
    can_relax = False

    def __init__(self, predict: Callable, name: str = "cgcnn-ensemble", records: Sequence[dict] = (),
                 checkpoints: Sequence[str] = ()):
        self.predict, self.name = predict, name
        self.records, self.checkpoints = list(records), list(checkpoints)
        self.members = max(len(self.checkpoints), 1)

    def __call__(self, crystals: Sequence) -> tuple[np.ndarray, np.ndarray | None]:
        return self.predict(crystals)

    def energies(self, structures: Sequence, progress: bool = False):
        crystals = [s if isinstance(s, Crystal) else Crystal.from_structure(s) for s in structures]
        if not crystals:
            return np.zeros(0), np.zeros(0)
        mean, std = self.predict(crystals)
        return np.asarray(mean, float), None if std is None else np.asarray(std, float)

    def ion_energy(self, ion: str) -> float:
        return 0.0


# ----------------------------------------------------------------------------------------------
# universal interatomic potentials
# ----------------------------------------------------------------------------------------------

#: the body-centred-cubic metals of the working ions (lattice constant in Å, a start for the relaxation)
_BCC = {"Li": 3.44, "Na": 4.23, "K": 5.28, "Rb": 5.59, "Cs": 6.05}
#: close-packed (hcp) or fcc metals: (structure, a, c) in Å
_OTHER = {"Mg": ("hcp", 3.21, 5.21), "Zn": ("hcp", 2.66, 4.95), "Y": ("hcp", 3.65, 5.73),
          "Ca": ("fcc", 5.58, None), "Al": ("fcc", 4.04, None)}


def metal_structure(ion: str) -> Structure:
    """The working ion's elemental metal in its ground-state structure (bcc alkali metals, hcp Mg/Zn/Y,
    fcc Ca/Al), near its experimental lattice constant (the model relaxes it)."""
    if ion in _BCC:
        return Structure.from_spacegroup("Im-3m", Lattice.cubic(_BCC[ion]), [ion], [[0, 0, 0]])
    if ion not in _OTHER:
        raise EnergyModelError(f"no metal structure for the working ion {ion!r}")
    kind, a, c = _OTHER[ion]
    if kind == "fcc":
        return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [ion], [[0, 0, 0]])
    return Structure.from_spacegroup("P6_3/mmc", Lattice.hexagonal(a, c), [ion], [[1 / 3, 2 / 3, 0.25]])


class UniversalPotential:
    """Base of the universal interatomic potentials: batched static energies, batched energies + forces +
    stresses for :mod:`lib.cathodes.relax`, and the ion's metal relaxed by the same model (cached)."""

    scale = "total"
    can_relax = True
    name = "potential"
    batch_size = 32

    def efs(self, structures: Sequence[Structure]) -> list[dict]:  # pragma: no cover - abstract
        """Per structure ``{"e": eV/atom, "f": (n, 3) eV/Å, "s": (3, 3) GPa}``."""
        raise NotImplementedError

    def energies(self, structures: Sequence, progress: bool = False, cache=DEFAULT, cached_only: bool = False):
        """Static energies per atom (eV/atom) of the structures as they are (no relaxation); σ is None. Cached
        with the model's relaxations (:func:`lib.cathodes.relax.static_energies`; ``cache=None``: not;
        ``cached_only``: NaN for a structure not computed yet)."""
        return static_energies(self, structures, self._static, cache=cache, progress=progress,
                               cached_only=cached_only), None

    def _static(self, structures: Sequence[Structure]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def ase_calculator(self):  # pragma: no cover - abstract
        """The potential's own ASE calculator (the one-by-one baseline and ASE's tools: NEB, MD)."""
        raise NotImplementedError

    @functools.cache  # noqa: B019 - one model object per process (POTENTIALS), so the cache lives as long
    def ion_energy(self, ion: str) -> float:
        """Energy per atom (eV/atom) of the ion's metal, relaxed by this model (cell and positions)."""
        r = relax(self, [metal_structure(ion)], ids=[f"{ion}-metal"], cache=None, progress=False)[0]
        if r.status != "converged":
            raise EnergyModelError(f"{self.name}: the {ion} metal did not relax ({r.status}: {r.reason})")
        return r.energy_per_atom


class CHGNet(UniversalPotential):
    """CHGNet (module docstring), loaded once per process from the weights inside its wheel."""

    def __init__(self, version: str = "0.3.0", threads: int | None = None, device: str | None = None):
        self.version = version
        self.name = f"chgnet-{version}"  # the cache's name: the same model on any device
        # the r2SCAN weights (chgnet >= 0.4.1; transfer-learned on MP's r2SCAN calculations) give uncorrected
        # r2SCAN energies: their own scale, never mixed with the MP2020-corrected PBE one
        self.scale = "r2scan" if version == "r2scan" else "total"
        self.threads = threads
        self.device = device  # None: CUDA when there is one, else the CPU (lib.devices.pick_device, as training)

    def __getstate__(self) -> dict:  # sent to Dask workers without the loaded network: they load their own
        return {k: v for k, v in self.__dict__.items() if k != "model"}

    @functools.cached_property
    def model(self):
        import torch
        from chgnet.model import CHGNet as _CHGNet  # here: chgnet (and its weights) only when used


        if self.threads:
            torch.set_num_threads(int(self.threads))
        with warnings.catch_warnings(), open(os.devnull, "w") as devnull:
            warnings.simplefilter("ignore")
            with contextlib.redirect_stdout(devnull):  # it prints "CHGNet v0.3.0 initialized with ..."
                m = _CHGNet.load(model_name=self.version, use_device=str(pick_device(self.device)),
                                  verbose=False)
        m.eval()
        return m

    def ase_calculator(self):
        from chgnet.model.dynamics import CHGNetCalculator  # here: chgnet only when used

        return CHGNetCalculator(model=self.model, use_device=str(next(self.model.parameters()).device))

    def _graphs(self, structures: Sequence[Structure]):
        conv = self.model.graph_converter
        return [conv(s, graph_id=str(i)) for i, s in enumerate(structures)]

    def efs(self, structures: Sequence[Structure]) -> list[dict]:
        """Energies, forces and stresses in batches of ``batch_size``, with **one** backward pass per batch.

        CHGNet's own ``predict_graph(task="efs")`` takes two gradients of the energy, each with
        ``create_graph=True`` (kept for training on forces), which on CPU costs ~13x a static energy; the same
        numbers (a test compares them) come from one ``torch.autograd.grad`` of the total energy with respect
        to the atoms' positions and the cells' strains at once, without a second-order graph.
        """
        out: list[dict] = []
        for i in range(0, len(structures), self.batch_size):
            out += self._efs_batch(self._graphs(structures[i : i + self.batch_size]))
        return out

    def _efs_batch(self, graphs) -> list[dict]:
        import torch
        from chgnet.model.model import BatchedGraph  # here: chgnet only when used

        m = self.model
        device = next(m.parameters()).device
        graphs = [g.to(device) for g in graphs]
        with torch.enable_grad():
            bg = BatchedGraph.from_graphs(graphs, bond_basis_expansion=m.bond_basis_expansion,
                                          angle_basis_expansion=m.angle_basis_expansion, compute_stress=True)
            pred = m._compute(bg, compute_force=False, compute_stress=False)
            n_atoms = torch.tensor([len(g.atomic_number) for g in graphs], dtype=pred["e"].dtype, device=device)
            e_total = pred["e"] * n_atoms if m.is_intensive else pred["e"]  # without the composition model's
            grads = torch.autograd.grad(e_total.sum(), [*bg.atom_positions, *bg.strains])
        comp = 0 if m.composition_model is None else m.composition_model(graphs)
        e = ((pred["e"] if m.is_intensive else pred["e"] / n_atoms) + comp).detach().cpu()
        k = len(graphs)
        return [
            {"e": float(e[j]), "f": -grads[j].detach().cpu().numpy().astype(float),
             "s": (grads[k + j] / bg.volumes[j] * 160.21766208).detach().cpu().numpy().astype(float)}
            for j in range(k)
        ]

    def _static(self, structures: Sequence[Structure]) -> np.ndarray:
        preds = self.model.predict_graph(self._graphs(structures), task="e", batch_size=self.batch_size)
        preds = [preds] if isinstance(preds, dict) else preds
        return np.array([float(p["e"]) for p in preds])


@functools.cache
def _mp2020():

    return MaterialsProject2020Compatibility(check_potcar=False)


def mp2020_correction(structure: Structure) -> float:
    """MP2020's energy correction of ``structure`` (eV/atom; pymatgen's ``MaterialsProject2020Compatibility``):
    its anion corrections (oxide, peroxide, superoxide from the structure; S, F, N, ...) and, where MP runs
    GGA+U (an oxide or fluoride of Co, Cr, Fe, Mn, Mo, Ni, V, W), the U corrections. What a potential trained
    on MP's *uncorrected* energies needs added to be on MP's corrected scale (CHGNet's: never apply it to
    CHGNet). In an electrode pair it cancels (both ends hold the same framework); in a hull it does not."""

    compat, comp = _mp2020(), structure.composition
    anion = "F" if "F" in comp else ("O" if "O" in comp else None)
    u = {el.symbol: compat.u_settings[anion].get(el.symbol, 0.0) for el in comp.elements} if anion else {}
    plus_u = any(v > 0 for v in u.values())
    entry = ComputedStructureEntry(structure, 0.0, parameters={
        "run_type": "GGA+U" if plus_u else "GGA", "hubbards": u if plus_u else {}, "software": "uMLIP"})
    return float(sum(a.value for a in compat.get_adjustments(entry))) / comp.num_atoms


class SevenNet(UniversalPotential):
    """SevenNet-0 (Park et al., J. Chem. Theory Comput. 20, 4857 (2024); PyPI ``sevenn``, MIT; the checkpoint
    of 11 July 2024 is inside its wheel, so it works offline), an equivariant message-passing potential trained,
    like CHGNet, on MPtrj, but on its **uncorrected** energies: MP2020's corrections are added here, once
    (:func:`mp2020_correction`), so that its energies are on CHGNet's and MP's corrected scale and the two
    can be compared or averaged. It learned MP's relaxations too: against MP's voltages it is no leak-free test.
    On a GPU many structures go through the network as one batched graph (:meth:`efs`, :meth:`_static`; at most
    ``max_atoms`` atoms a batch, default 2000), the way SevenNet's own batched inference does it: one call instead
    of one per structure. On a CPU the default is one structure a call: there its tensor products dominate and a
    batch of 113 atoms took 1.6x longer than the same structures one by one (2026-12-06, one thread).
    ``_one_by_one`` is its ASE calculator, kept as the reference the batched results are tested against."""

    def __init__(self, version: str = "7net-0", threads: int | None = None, device: str | None = None,
                 max_atoms: int | None = None, modal: str | None = None):
        self.version, self.modal = version, modal
        self.name = ("sevennet-0" if version == "7net-0" else f"sevennet-{version.removeprefix('7net-')}"
                     + (f"-{modal.lower()}" if modal else ""))
        # PBE-level heads learned MPtrj's uncorrected energies: MP2020 added here puts them on MP's corrected scale;
        # the R2SCAN head of SevenNet-MF-0 gives uncorrected r2SCAN energies (its own scale, no correction)
        self.scale = "r2scan" if (modal or "").upper() == "R2SCAN" else "total"
        self.threads, self.device, self.max_atoms = threads, device, max_atoms

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "calculator"}

    @functools.cached_property
    def calculator(self):
        import torch
        from sevenn.calculator import SevenNetCalculator  # here: sevenn (and its weights) only when used


        if self.threads:
            torch.set_num_threads(int(self.threads))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return SevenNetCalculator(self.version, device=str(pick_device(self.device)), modal=self.modal)

    def ase_calculator(self):
        return self.calculator

    def _atoms(self, structure: Structure):

        atoms = AseAtomsAdaptor.get_atoms(structure)
        atoms.calc = self.calculator
        return atoms

    def _batches(self, structures: Sequence[Structure]) -> list[list[int]]:
        """Indices of ``structures`` in consecutive batches of at most ``max_atoms`` atoms (one at least)."""
        cap = self.max_atoms if self.max_atoms is not None else (2000 if self.calculator.device.type == "cuda" else 1)
        out: list[list[int]] = []
        n = 0
        for i, s in enumerate(structures):
            if out and n + len(s) <= cap:
                out[-1].append(i)
                n += len(s)
            else:
                out.append([i])
                n = len(s)
        return out

    def _forward(self, structures: Sequence[Structure]) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """(total energy eV, forces eV/Å, stress as ASE's Voigt 6 in eV/Å³) of each structure, batched."""
        from sevenn import _keys as KEY  # here: sevenn only when used
        from sevenn.atom_graph_data import AtomGraphData
        from sevenn.train.dataload import unlabeled_atoms_to_graph
        from torch_geometric.data import Batch

        calc = self.calculator
        out = []
        for idx in self._batches(structures):
            graphs = []
            for i in idx:
                atoms = AseAtomsAdaptor.get_atoms(structures[i])
                calc.set_atoms(atoms)  # its check: an element the model does not know is an error
                g = AtomGraphData.from_numpy_dict(unlabeled_atoms_to_graph(atoms, calc.cutoff, with_shift=False))
                if calc.modal:
                    g[KEY.DATA_MODALITY] = calc.modal
                graphs.append(g)
            batch = Batch.from_data_list(graphs).to(calc.device)
            calc.model.set_is_batch_data(True)
            try:
                res = calc.model(batch)
            finally:
                calc.model.set_is_batch_data(False)
            e = res[KEY.PRED_TOTAL_ENERGY].detach().cpu().numpy().reshape(-1)
            f = res[KEY.PRED_FORCE].detach().cpu().numpy()
            st = (-res[KEY.PRED_STRESS]).detach().cpu().numpy().reshape(len(idx), 6)[:, [0, 1, 2, 4, 5, 3]]
            bounds = np.cumsum([0] + [len(structures[i]) for i in idx])
            out += [(float(e[k]), f[bounds[k] : bounds[k + 1]], st[k]) for k in range(len(idx))]
        return out

    def efs(self, structures: Sequence[Structure]) -> list[dict]:

        return [{"e": e / len(s) + self._correction(s), "f": np.asarray(f, float),
                 "s": voigt_6_to_full_3x3_stress(st) / units.GPa}
                for s, (e, f, st) in zip(structures, self._forward(structures), strict=True)]

    def _static(self, structures: Sequence[Structure]) -> np.ndarray:
        return np.array([e / len(s) + self._correction(s)
                         for s, (e, _, _) in zip(structures, self._forward(structures), strict=True)])

    def _correction(self, structure: Structure) -> float:
        """MP2020's correction (eV/atom) on the PBE-level scale; none on the r2SCAN one."""
        return 0.0 if self.scale == "r2scan" else mp2020_correction(structure)

    def _one_by_one(self, structures: Sequence[Structure]) -> list[dict]:
        """:meth:`efs` through SevenNet's ASE calculator, one structure at a time (the reference)."""

        out = []
        for s in structures:
            atoms = self._atoms(s)
            e = atoms.get_potential_energy() / len(atoms) + self._correction(s)
            out.append({"e": float(e), "f": np.asarray(atoms.get_forces(), float),
                        "s": voigt_6_to_full_3x3_stress(atoms.get_stress()) / units.GPa})
        return out


#: the universal potentials this compendium knows, by name; a second one is one class and one line here
POTENTIALS: dict[str, Callable[[], UniversalPotential]] = {
    "chgnet": CHGNet,  # CHGNet 0.3.0: MPtrj, MP2020-corrected energies
    "sevennet": SevenNet,  # SevenNet-0 (11 July 2024): MPtrj, uncorrected; MP2020 added
    "sevennet_l3i5": functools.partial(SevenNet, "7net-l3i5"),  # SevenNet-l3i5: MPtrj, lmax 3; MP2020 added
    "sevennet_mf0": functools.partial(SevenNet, "7net-mf-0", modal="PBE"),  # SevenNet-MF-0, its PBE(+U) head
    "chgnet_r2scan": functools.partial(CHGNet, "r2scan"),  # CHGNet r2SCAN: MP r2SCAN energies, uncorrected
    "sevennet_mf0_r2scan": functools.partial(SevenNet, "7net-mf-0", modal="R2SCAN"),  # SevenNet-MF-0's r2SCAN head
}
#: the energy scale of each: "total" is MP's PBE/PBE+U with MP2020 corrections, "r2scan" uncorrected r2SCAN
SCALES = {"chgnet": "total", "sevennet": "total", "sevennet_l3i5": "total", "sevennet_mf0": "total",
          "chgnet_r2scan": "r2scan", "sevennet_mf0_r2scan": "r2scan"}


@functools.cache
def get_potential(name: str = "chgnet") -> UniversalPotential:
    """The named universal potential, loaded once per process."""
    if name not in POTENTIALS:
        raise EnergyModelError(f"unknown potential {name!r}; known: {', '.join(POTENTIALS)}")
    return POTENTIALS[name]()


def pair_crystals(matched: pd.DataFrame) -> dict[str, Crystal]:
    """Every distinct structure of the matched pairs, by material id (charged and discharged ends)."""
    return {
        **dict(zip(matched["high_mpid"], matched["charged"], strict=True)),
        **dict(zip(matched["low_mpid"], matched["discharged"], strict=True)),
    }


def potential_pair_table(matched: pd.DataFrame, model, relaxed: bool = False, prefix: str | None = None,
                         progress: bool = True, rescore=None, **relax_kwargs) -> pd.DataFrame:
    """Voltages etc. of the matched pairs from a universal potential's total energies (eV/atom), the ion's
    metal relaxed by the same model (this module), through pymatgen like the DFT ones.

    ``relaxed=False``: static energies of the mirror's (DFT-relaxed) structures. ``relaxed=True``: both ends
    relaxed with the model (:func:`lib.cathodes.relax.relax`, cached; ``relax_kwargs`` go there), capacities
    from the relaxed cells; a pair whose either end did not converge gets no voltage and says why in
    ``<prefix>_error`` (never silently used). ``prefix`` defaults to ``umlip_static`` / ``umlip_relaxed``.
    Adds ``<prefix>_e_charged`` / ``_discharged`` (eV/atom) and, relaxed, ``<prefix>_status_*``.
    ``rescore`` (with ``relaxed``): another potential's static energies at ``model``'s minima, its own metal too
    (relax with the fast potential, score with the accurate one; prefix ``umlip_rescored``). ``cached_only=True``
    (in ``relax_kwargs``): nothing is computed; a pair with an energy not in the cache says so in its error.
    """
    if rescore is not None and not relaxed:
        raise ValueError("rescore= scores relaxed structures: pass relaxed=True")
    prefix = prefix or ("umlip_rescored" if rescore is not None else "umlip_relaxed" if relaxed else "umlip_static")
    crystals = pair_crystals(matched)
    ids = list(crystals)
    t = matched.copy()
    if relaxed:
        rs = dict(zip(ids, relax(model, [crystals[i] for i in ids], ids=ids, progress=progress, **relax_kwargs),
                      strict=True))
        energy = pd.Series({i: r.energy_per_atom if r.ok else np.nan for i, r in rs.items()})
        status = pd.Series({i: r.status if r.ok else f"{r.status}: {r.reason}" for i, r in rs.items()})
        t["charged"] = [rs[i].structure if rs[i].ok else c for i, c in zip(t["high_mpid"], t["charged"], strict=True)]
        t["discharged"] = [rs[i].structure if rs[i].ok else c
                           for i, c in zip(t["low_mpid"], t["discharged"], strict=True)]
        t[f"{prefix}_status_charged"] = status[t["high_mpid"]].to_numpy()
        t[f"{prefix}_status_discharged"] = status[t["low_mpid"]].to_numpy()
    else:
        energy = pd.Series(model.energies([crystals[i] for i in ids], progress=progress, **relax_kwargs)[0], index=ids)
    if rescore is not None:  # the other potential at the relaxed structures (NaN where a relaxation failed)
        done = [i for i in ids if np.isfinite(energy[i])]
        e2 = rescore.energies([rs[i].structure for i in done], progress=progress)[0]
        energy = pd.Series(np.nan, index=ids)
        energy[done] = e2
    energy_model = rescore if rescore is not None else model
    t[f"{prefix}_e_charged"] = energy[t["high_mpid"]].to_numpy()
    t[f"{prefix}_e_discharged"] = energy[t["low_mpid"]].to_numpy()
    mu = {ion: energy_model.ion_energy(ion) for ion in t["ion"].unique()}
    out = pair_table(t, f"{prefix}_e_charged", f"{prefix}_e_discharged", prefix=prefix, progress=progress,
                     ion_energies=mu)
    if not relaxed:
        pending = out[f"{prefix}_e_charged"].isna() | out[f"{prefix}_e_discharged"].isna()
        out.loc[pending, f"{prefix}_error"] = "static energy not computed yet (pending)"
    if relaxed:
        bad = ~(out[f"{prefix}_status_charged"].eq("converged") & out[f"{prefix}_status_discharged"].eq("converged"))
        why = ("charged: " + out[f"{prefix}_status_charged"] + "; discharged: " + out[f"{prefix}_status_discharged"])
        out.loc[bad, f"{prefix}_error"] = "relaxation not used (" + why[bad] + ")"
    out.attrs.update(matched.attrs, **{f"{prefix}_ion_energies": mu})
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m lib.cathodes.potentials static NAME [NAME ...]``: static energies of every end member of MP's
    insertion-electrode pairs (:func:`lib.data.electrodes.load_electrode_pairs`, ~7,600 structures) and the working
    ions' metals with each named potential, cached as they finish (a killed run resumes) under data/relax/<model>/;
    ``python -m lib.cathodes.relax archive`` then puts them in records/relax/ (commit it)."""

    ap = argparse.ArgumentParser(prog="python -m lib.cathodes.potentials", description=main.__doc__)
    ap.add_argument("action", choices=("static",))
    ap.add_argument("potentials", nargs="+", choices=sorted(POTENTIALS))
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: one core a potential)")
    a = ap.parse_args(argv)
    pairs = load_electrode_pairs()
    structures = pair_crystals(pairs)
    ids = pair_ids(pairs)
    for name in a.potentials:
        model = POTENTIALS[name](threads=a.threads)
        e, _ = model.energies([structures[i] for i in ids], progress=True)
        metals = {ion: model.ion_energy(ion) for ion in sorted(pairs["ion"].unique())}
        print(f"{name} ({model.name}): {int(np.isfinite(e).sum())} of {len(ids)} static energies; metals "
              + ", ".join(f"{k} {v:.3f}" for k, v in metals.items()) + " eV/atom", flush=True)
    return 0


__all__ = [
    "EnergyModel",
    "EnergyModelError",
    "FormationEnergyModel",
    "UniversalPotential",
    "CHGNet",
    "SevenNet",
    "mp2020_correction",
    "POTENTIALS",
    "SCALES",
    "get_potential",
    "check_same_scale",
    "energy_model",
    "metal_structure",
    "pair_crystals",
    "potential_pair_table",
]

if __name__ == "__main__":
    raise SystemExit(main())
