"""What decides a cathode besides its voltage: the stability of both states, oxygen release, volume change.

The screen used to judge one number, the discharged state's E_hull, against a hull that keeps only the phases
within 0.02 eV/atom of the DFT hull and with at most 80 atoms (:class:`lib.cathodes.hull.PotentialHull` with
``ScreenSize``'s defaults). Every phase left out can only make a candidate look *more* stable. This module
gives the screen what it needs to judge a cathode on the quantities that decide one:

1. :class:`SystemHull`: a convex hull on **one energy scale** holding **every** phase of a chemical system
   that the project's structure sources hold (:func:`structure_sources`: the MP mirror's CGCNN table, the end
   members of MP's insertion electrodes, the mirror's extra MP structures), with energies from one energy
   model (``model.energies(structures) -> (eV/atom, None)``, e.g. ``lib.cathodes.potentials.get_potential
   ("sevennet")``, whose static energies are cached on disk). No energy window, no size cap. The phases of a
   system are computed once and kept in one JSON file per system, ``data/hulls/<model>/<system>.json``, which
   :func:`archive` merges into the committed ``records/hulls/<model>.jsonl.gz`` (read through like
   :mod:`lib.cathodes.relax`'s archive). Phases are left out by id (``exclude_ids``) or by chemical system
   (``exclude_systems``: every phase whose elements include a held-out framework's, for a blind rediscovery
   benchmark); an excluded phase is never computed and never reaches a phase diagram.
2. :func:`both_states`: E_hull of the charged **and** the discharged state against that hull.
3. :func:`oxygen_release_onset`: the oxygen chemical potential μ_O (relative to the O reference of the hull)
   below which a charged oxide gives off O2, the products it decomposes to there, and the temperature at which
   O2 gas at a given pressure has that chemical potential (ideal gas, NIST-JANAF tables).
4. :func:`volume_change`: the volume change between the two states per framework formula unit, pymatgen's
   ``InsertionElectrode.max_delta_volume`` definition, in %.
5. :func:`stability_table`: all of it for the screen's candidate rows, with a ``reason`` for every number that
   could not be computed (counted in ``attrs["reasons"]``, never dropped).

**Elemental references.** Each element's reference is the lowest-energy elemental phase among the sources,
with the model's energy (pymatgen's ``PhaseDiagram`` takes the lowest elemental entry itself). For oxygen this
is the **MP-compatible choice**: MP2020 (Wang et al., Sci. Rep. 11, 15496 (2021)) fits its oxide correction
(-0.687 eV per O atom, pymatgen's ``MaterialsProject2020Compatibility``) to experimental formation enthalpies
*relative to MP's own computed elemental O2 phases* (molecular-crystal O2 cells such as mp-12957), which carry
no correction. GGA's overbinding of the O2 molecule (about 1.36 eV per O2, Wang, Maxisch & Ceder, Phys. Rev.
B 73, 195107 (2006)) is absorbed into the oxide correction. CHGNet learned MP2020-corrected energies and
SevenNet's energies get MP2020 added here (:mod:`lib.cathodes.potentials`), so the consistent reference is
the model's energy of MP's own elemental O phases. A separately "corrected O2 molecule" would count the
correction twice. On an uncorrected scale (the r2SCAN heads, raw PBE) pass a fitted reference instead:
``SystemHull(model, references={"O": eV_per_atom})`` replaces the sources' elemental phases of that element.
The reference chosen for each element is reported (:meth:`SystemHull.references`).

**Energies.** By default static energies of the sources' structures (DFT-relaxed by MP) with the model. A
candidate relaxed with the model sits lower than it would as a static energy of its DFT-relaxed cell (by the
model's relaxation energy, typically meV/atom for MP structures), so against a static hull a relaxed candidate
looks slightly too stable. ``SystemHull(Relaxed(model))`` puts every phase through the same relaxation as the
candidates (:mod:`lib.cathodes.relax`, cached; a phase that does not converge is left out and named in
``failed``): one protocol on both sides, at the cost of relaxing every phase of the system once.

Oxygen release and its temperature (formulas and sources in ``docs/stability.md``)::

    mu_O* = max over O-poorer products P of (E_X - E_P) / (n_O,X - n_O,P)  - E_O,ref
    delta_mu_O(T, p) = 1/2 [H(T) - H(298.15 K) - T S(T)]_O2 + 1/2 k_B T ln(p / p°)

with E and n per the same amount of the non-O elements, P running over the critical compositions of the hull
along the line from X's cation composition to O (pymatgen's ``get_critical_compositions``, the machinery of
``PhaseDiagram.get_element_profile``), and H, S of O2 from NIST-JANAF. For a phase on the hull mu_O* is the
lower end of its stability window in mu_O, exactly what ``get_element_profile`` gives; for a phase above the
hull it is higher (a metastable oxide loses O2 earlier), which the element profile of its composition cannot
say. The reference is H(298.15 K) because the MP2020 fit reproduces 298 K formation enthalpies; the solids'
own heat capacity and entropy are neglected, as in Ong et al., Chem. Mater. 20, 1798 (2008) and Wang et al.
(2006).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition, Element, Structure
from scipy.optimize import brentq

from lib.cathodes import archive as _archive
from lib.cathodes.potentials import get_potential
from lib.cathodes.relax import STATIC, relax, structure_key
from lib.data import load_dataset
from lib.data.electrodes import load_electrode_pairs
from lib.data.sources.base import DataUnavailable
from lib.paths import ARCHIVE, DATA, atomic_path
from lib.structures import Crystal, as_structure

HULLS = DATA / "hulls"  # data/hulls/<model>/<system>.json (not tracked)
ARCHIVED = ARCHIVE / "hulls"  # records/hulls/<model>.jsonl.gz (committed)
DEFAULT = object()

#: Boltzmann's constant in eV/K and the conversion of kJ/mol to eV per particle
K_B = 8.617333262e-5
KJ_MOL = 1.0 / 96.485332
#: O2 (ideal gas, p° = 1 bar): T (K), S° (J/mol/K), H°(T) - H°(298.15 K) (kJ/mol); NIST-JANAF Thermochemical
#: Tables, 4th ed. (Chase 1998), table O-029 (https://janaf.nist.gov/tables/O-029.html). Tested against NIST
#: WebBook's Shomate fit of the same data.
JANAF_O2 = np.array([
    (0.0, 0.0, -8.683), (100.0, 173.307, -5.779), (200.0, 193.485, -2.868), (298.15, 205.147, 0.0),
    (300.0, 205.329, 0.054), (400.0, 213.871, 3.025), (500.0, 220.693, 6.084), (600.0, 226.451, 9.244),
    (700.0, 231.466, 12.499), (800.0, 235.921, 15.835), (900.0, 239.931, 19.241), (1000.0, 243.578, 22.703),
    (1100.0, 246.922, 26.212), (1200.0, 250.010, 29.761), (1300.0, 252.878, 33.344),
    (1400.0, 255.556, 36.957), (1500.0, 258.068, 40.599), (1600.0, 260.434, 44.266),
    (1700.0, 262.672, 47.958), (1800.0, 264.796, 51.673), (1900.0, 266.818, 55.413),
    (2000.0, 268.748, 59.175),
])
ATM_PER_BAR = 1.0 / 1.01325


def system_name(elements: Iterable[str | Element]) -> str:
    """A chemical system's name: its element symbols sorted alphabetically, joined by '-' ('Co-Li-O')."""
    return "-".join(sorted({Element(str(e)).symbol for e in elements}))


def _symbols(system: str | Iterable[str]) -> frozenset[str]:
    parts = system.split("-") if isinstance(system, str) else list(system)
    return frozenset(Element(str(p).strip()).symbol for p in parts if str(p).strip())


def _composition(structure_or_composition) -> Composition:
    """The composition of a structure, Crystal, Composition or formula, in elements (oxidation states off)."""
    x = structure_or_composition
    if isinstance(x, str):
        x = Composition(x)
    return (x if isinstance(x, Composition) else as_structure(x).composition).element_composition


# ----------------------------------------------------------------------------------------------
# the structure sources
# ----------------------------------------------------------------------------------------------


def structure_sources(mirror: str | Path | None = None, progress: bool = False) -> pd.DataFrame:
    """Every structure of the project's sources, one row per material id: ``material_id``, ``structure``
    (:class:`lib.structures.Crystal`), ``source``. In order (the first source of an id wins; all three hold MP
    structures under MP's ids): the mirror's CGCNN table (``load_dataset("cgcnn")``), the end members of MP's
    insertion electrodes (:func:`lib.data.electrodes.load_electrode_pairs`), the mirror's extra structures
    (``load_dataset("extra_structures")``). A source that cannot be read is said in ``attrs["notes"]``."""
    frames, notes = [], []
    kw = {"mirror": mirror, "progress": progress, "verbose": False}
    try:
        t = load_dataset("cgcnn", source="auto", **kw)
        frames.append(pd.DataFrame({"material_id": t["material_id"], "structure": t["structure"],
                                    "source": "mp_cgcnn_2020"}))
    except DataUnavailable as exc:
        notes.append(f"cgcnn: {exc}")
    try:
        p = load_electrode_pairs(mirror=mirror, progress=progress)
        frames.append(pd.DataFrame({"material_id": [*p["high_mpid"], *p["low_mpid"]],
                                    "structure": [*p["charged"], *p["discharged"]],
                                    "source": "electrode_pairs"}))
    except DataUnavailable as exc:
        notes.append(f"electrode pairs: {exc}")
    try:
        x = load_dataset("extra_structures", source="auto", **kw)
        frames.append(pd.DataFrame({"material_id": x["material_id"], "structure": x["structure"],
                                    "source": "mp_structures_extra"}))
    except DataUnavailable as exc:
        notes.append(f"extra structures: {exc}")
    if not frames:
        raise DataUnavailable("no structure source could be read: " + "; ".join(notes))
    out = pd.concat(frames, ignore_index=True).drop_duplicates("material_id").reset_index(drop=True)
    out.attrs["notes"] = notes
    out.attrs["by_source"] = dict(Counter(out["source"]))
    return out


# ----------------------------------------------------------------------------------------------
# the hull
# ----------------------------------------------------------------------------------------------


class Relaxed:
    """An energy model whose energies are those of the structures relaxed with ``model``
    (:func:`lib.cathodes.relax.relax`, cached; ``relax_kwargs`` go there): NaN where a relaxation did not
    converge. Its ``name`` is ``<model>-relaxed``, so its hulls are stored apart from the static ones."""

    def __init__(self, model, **relax_kwargs):
        self.model, self.relax_kwargs = model, relax_kwargs
        self.name = f"{model.name}-relaxed"
        self.scale = getattr(model, "scale", "total")

    def energies(self, structures: Sequence, progress: bool = False) -> tuple[np.ndarray, None]:
        rs = relax(self.model, list(structures), progress=progress, **self.relax_kwargs)
        return np.array([r.energy_per_atom if r.ok else np.nan for r in rs], float), None

    def ion_energy(self, ion: str) -> float:
        return float(self.model.ion_energy(ion))


@dataclass(frozen=True)
class Phase:
    """One phase of the sources: its id, structure, source and the elements it holds."""

    id: str
    structure: Crystal | Structure
    source: str
    elements: frozenset[str]


class SystemHull:
    """Every phase of a chemical system on one model's energy scale (module docstring).

    ``model``: ``energies(structures) -> (eV/atom array, None)`` and ``name`` (``scale`` if it has one).
    ``table``: ``material_id``, ``structure`` and optionally ``source`` (default :func:`structure_sources`).
    ``exclude_ids`` / ``exclude_systems``: phases never used (a system given as 'Fe-Li-O-P' or a sequence of
    symbols excludes every phase whose elements include all of its elements, so a held-out framework leaks
    neither itself nor a doped or mixed variant, while its subsystems stay). ``references``: {element:
    eV/atom} replacing the sources' elemental phases of that element (a fitted reference on an uncorrected
    scale). ``ion_references``: elements whose reference may also be the model's own relaxed metal
    (``model.ion_energy(el)``, the reference its voltages use) when that is lower. ``cache``: the folder of
    the per-system files (default ``data/hulls/<model.name>``; None: none); ``archive_dir``: the archive read
    through (default ``records/hulls``; None: none).
    """

    def __init__(self, model, table: pd.DataFrame | None = None, *, exclude_ids: Iterable[str] = (),
                 exclude_systems: Iterable[str | Sequence[str]] = (),
                 references: Mapping[str, float] | None = None, ion_references: Iterable[str] = (),
                 cache=DEFAULT, archive_dir=DEFAULT):
        self.model = model
        self.name = str(model.name)
        self.scale = getattr(model, "scale", "total")
        self.exclude_ids = frozenset(map(str, exclude_ids))
        self.exclude_systems = tuple(_symbols(s) for s in exclude_systems)
        self._references = {Element(k).symbol: float(v) for k, v in (references or {}).items()}
        self.ion_references = frozenset(Element(e).symbol for e in ion_references)
        self.folder = HULLS / self.name if cache is DEFAULT else Path(cache) if cache is not None else None
        self.archive_dir = ARCHIVED if archive_dir is DEFAULT else Path(archive_dir) if archive_dir else None
        if table is None:
            table = structure_sources()
        self.notes: list[str] = list(table.attrs.get("notes", []))
        src = table["source"] if "source" in table.columns else pd.Series("table", index=table.index)
        self._by_elements: dict[frozenset[str], list[Phase]] = {}
        self.excluded: dict[str, str] = {}  # id -> why it is left out
        seen: set[str] = set()
        for mid, s, so in zip(table["material_id"], table["structure"], src, strict=True):
            mid = str(mid)
            if mid in seen or s is None:
                continue
            seen.add(mid)
            els = frozenset(Element.from_Z(int(z)).symbol for z in np.unique(_numbers(s)))
            if mid in self.exclude_ids:
                self.excluded[mid] = "excluded by id"
                continue
            hit = next((x for x in self.exclude_systems if x <= els), None)
            if hit is not None:
                self.excluded[mid] = f"excluded system {system_name(hit)}"
                continue
            self._by_elements.setdefault(els, []).append(Phase(mid, s, str(so), els))
        self._energy: dict[tuple[str, str], float] = {}  # (id, structure key) -> eV/atom (NaN: not usable)
        self._keys: dict[str, str] = {}
        self.failed: dict[str, str] = {}  # id -> why its energy is not usable
        self._pd: dict[tuple, PhaseDiagram] = {}

    # -- phases and their energies ------------------------------------------------------------

    def phases(self, elements: Iterable[str]) -> list[Phase]:
        """Every phase (not excluded at construction) whose elements lie in the system ``elements``."""
        els = sorted(_symbols(elements))
        out: list[Phase] = []
        for r in range(1, len(els) + 1):
            for sub in itertools.combinations(els, r):
                out += self._by_elements.get(frozenset(sub), [])
        return out

    def ids_of(self, formula: str) -> list[str]:
        """The ids of every phase (not excluded) with the reduced composition of ``formula``: all its polymorphs,
        under every id the sources hold it (to judge a known material as if it were new, leave them all out: the
        same structure often sits in the sources under a second MP id)."""
        comp = _composition(formula)
        red = comp.reduced_composition
        return sorted(p.id for p in self.phases([e.symbol for e in comp])
                      if _composition(p.structure).reduced_composition == red)

    def _key(self, p: Phase) -> str:
        if p.id not in self._keys:
            self._keys[p.id] = structure_key(as_structure(p.structure), self.name, STATIC)
        return self._keys[p.id]

    def system_file(self, elements: Iterable[str]) -> Path | None:
        """The per-system file of ``elements`` (None without a cache folder)."""
        return None if self.folder is None else self.folder / f"{system_name(elements)}.json"

    def _stored(self, elements: Iterable[str]) -> list[dict]:
        """The phases stored for this system: its own file, else the archive's record of it."""
        f = self.system_file(elements)
        if f is not None and f.is_file():
            try:
                return list(json.loads(f.read_text()).get("phases", []))
            except ValueError:  # a damaged file: computed again (and overwritten)
                pass
        if self.archive_dir is not None:
            record = archived(self.name, self.archive_dir).get(system_name(elements), {})
            return list(record.get("phases", []))
        return []

    def energies(self, elements: Iterable[str]) -> dict[str, float]:
        """The model's energy per atom (NaN: not usable, see ``failed``) of every phase of the system, by
        id: from memory, the system's file or the archive where the structure is the same (its cache key),
        computed (one call of the model) otherwise; the system's file is then written."""
        self.prepare([elements])
        out = {p.id: self._energy[(p.id, self._key(p))] for p in self.phases(elements)}
        for i, v in out.items():
            if not math.isfinite(v):
                self.failed[i] = "no finite energy from the model"
        return out

    def prepare(self, systems: Iterable[Iterable[str]]) -> None:
        """Read or compute the phases of many systems, those not known yet with **one** call of the model (a
        GPU's batches fill up), and write the file of each system that lacks one or had phases computed."""
        systems = sorted({frozenset(_symbols(s)) for s in systems}, key=system_name)
        todo: dict[str, Phase] = {}
        for els in systems:
            for d in self._stored(els):
                if d.get("key") and d.get("energy_per_atom") is not None:
                    self._energy.setdefault((str(d["id"]), str(d["key"])), float(d["energy_per_atom"]))
            todo.update({p.id: p for p in self.phases(els) if (p.id, self._key(p)) not in self._energy})
        if todo:
            e, _ = self.model.energies([p.structure for p in todo.values()])
            for p, v in zip(todo.values(), np.asarray(e, float).reshape(-1), strict=True):
                self._energy[(p.id, self._key(p))] = float(v)
        for els in systems:
            f = self.system_file(els)
            phases = self.phases(els)
            if f is not None and (not f.is_file() or any(p.id in todo for p in phases)):
                self._save(els, phases, {p.id: self._energy[(p.id, self._key(p))] for p in phases})

    def _save(self, elements: Iterable[str], phases: list[Phase], energy: dict[str, float]) -> None:
        f = self.system_file(elements)
        if f is None:
            return
        rows = [{"id": p.id, "formula": _composition(p.structure).formula.replace(" ", ""),
                 "n_atoms": int(len(_numbers(p.structure))), "source": p.source, "key": self._key(p),
                 "energy_per_atom": energy[p.id] if math.isfinite(energy[p.id]) else None}
                for p in sorted(phases, key=lambda p: p.id)]
        record = {"model": self.name, "scale": self.scale, "system": system_name(elements), "phases": rows}
        with atomic_path(f) as tmp:
            tmp.write_text(json.dumps(record, separators=(",", ":")))

    def missing(self, elements: Iterable[str]) -> list[str]:
        """The ids of the system's phases without a usable energy (left out of its diagram: a hull built from
        a partly computed cache lacks them, which can only make a candidate look more stable)."""
        return sorted(i for i, v in self.energies(elements).items() if not math.isfinite(v))

    # -- entries, references, phase diagrams --------------------------------------------------

    def entries(self, elements: Iterable[str], exclude_ids: Iterable[str] = ()) -> list[PDEntry]:
        """pymatgen entries of the system (total energy of each cell, ``name`` = id, ``attribute`` = source),
        the references included; ``exclude_ids`` leaves more phases out (a known material checked as new)."""
        els = sorted(_symbols(elements))
        skip = set(map(str, exclude_ids))
        e = self.energies(els)
        out = []
        for p in self.phases(els):
            if p.id in skip or not math.isfinite(e[p.id]):
                continue
            if len(p.elements) == 1 and next(iter(p.elements)) in self._references:
                continue  # replaced by the given reference
            comp = _composition(p.structure)
            out.append(PDEntry(comp, e[p.id] * comp.num_atoms, name=p.id, attribute=p.source))
        for el in els:
            if el in self._references:
                out.append(PDEntry(Composition(el), self._references[el], name=f"{el} reference",
                                   attribute="given reference"))
            elif el in self.ion_references:
                out.append(PDEntry(Composition(el), float(self.model.ion_energy(el)),
                                   name=f"{el} metal ({self.name})", attribute="model's relaxed metal"))
        have = {next(iter(x.composition.elements)).symbol for x in out if x.composition.is_element}
        missing = [x for x in els if x not in have]
        if missing:
            raise ValueError(f"{self.name} hull of {system_name(els)}: no usable elemental phase of "
                             f"{', '.join(missing)} among the sources")
        return out

    def phase_diagram(self, elements: Iterable[str], exclude_ids: Iterable[str] = ()) -> PhaseDiagram:
        """pymatgen's PhaseDiagram of the chemical system ``elements`` (symbols), built once per exclusion."""
        key = (system_name(elements), frozenset(map(str, exclude_ids)))
        if key not in self._pd:
            self._pd[key] = PhaseDiagram(self.entries(elements, exclude_ids))
        return self._pd[key]

    def references(self, elements: Iterable[str],
                   exclude_ids: Iterable[str] = ()) -> dict[str, tuple[str, float]]:
        """Each element's reference of the system: (its id or name, eV/atom)."""
        pd_ = self.phase_diagram(elements, exclude_ids)
        return {el.symbol: (str(en.name), float(en.energy_per_atom)) for el, en in pd_.el_refs.items()}

    def e_above_hull(self, structure_or_composition, energy_per_atom: float,
                     exclude_ids: Iterable[str] = ()) -> float:
        """eV/atom above (negative: below) the hull of a structure or composition with an energy per atom on
        this model's scale; NaN for a non-finite energy."""
        if not np.isfinite(energy_per_atom):
            return float("nan")
        comp = _composition(structure_or_composition)
        pd_ = self.phase_diagram([e.symbol for e in comp], exclude_ids)
        entry = PDEntry(comp, energy_per_atom * comp.num_atoms)
        return float(pd_.get_e_above_hull(entry, allow_negative=True))

    def summary(self, elements: Iterable[str], exclude_ids: Iterable[str] = ()) -> pd.DataFrame:
        """Every phase of the system's diagram: id, formula, source, energy per atom, E_hull, stable."""
        pd_ = self.phase_diagram(elements, exclude_ids)
        stable = {id(e) for e in pd_.stable_entries}
        t = pd.DataFrame([{"id": e.name, "formula": e.composition.reduced_formula, "source": e.attribute,
                           "n_atoms": int(e.composition.num_atoms), "energy_per_atom": e.energy_per_atom,
                           "e_above_hull": pd_.get_e_above_hull(e), "stable": id(e) in stable}
                          for e in pd_.all_entries])
        return t.sort_values(["formula", "e_above_hull"], ignore_index=True)


def _numbers(s) -> np.ndarray:
    return s.numbers if isinstance(s, Crystal) else np.asarray(s.atomic_numbers)


# ----------------------------------------------------------------------------------------------
# the archive of the per-system files
# ----------------------------------------------------------------------------------------------


def archive_file(model_name: str, archive_dir: str | Path | None = None) -> Path:
    """The committed archive of a model's hulls: ``records/hulls/<model>.jsonl.gz`` (:mod:`lib.cathodes.archive`)."""
    return _archive.archive_file("hulls", model_name, archive_dir if archive_dir is not None else ARCHIVED)


def archived(model_name: str, archive_dir: str | Path | None = None) -> dict[str, dict]:
    """The archived hulls of a model, by system name (empty when there is none)."""
    return _archive.archived("hulls", model_name, archive_dir if archive_dir is not None else ARCHIVED,
                             field="system")


def archive(model_name: str, cache: str | Path | None = None, archive_dir: str | Path | None = None) -> Path:
    """Merge a model's per-system files (``cache``, default ``data/hulls/<model>``) into its archive, one line
    per system sorted by name, gzipped without a time stamp (same hulls, same bytes); returns the file. A
    system's file replaces its archived record."""
    folder = Path(cache) if cache is not None else HULLS / model_name
    return _archive.archive_folder(folder, "hulls", model_name,
                                   archive_dir if archive_dir is not None else ARCHIVED, field="system")[0]


# ----------------------------------------------------------------------------------------------
# both states
# ----------------------------------------------------------------------------------------------


def both_states(charged, discharged, e_charged: float, e_discharged: float, hull,
                exclude_ids: Iterable[str] = ()) -> dict[str, float]:
    """``{"e_hull_charged", "e_hull_discharged"}`` (eV/atom, negative below the hull) of the two states
    against the same hull (anything with ``e_above_hull(structure, energy_per_atom, exclude_ids)``)."""
    ex = tuple(exclude_ids)
    return {"e_hull_charged": hull.e_above_hull(charged, e_charged, ex),
            "e_hull_discharged": hull.e_above_hull(discharged, e_discharged, ex)}


# ----------------------------------------------------------------------------------------------
# oxygen release
# ----------------------------------------------------------------------------------------------


def delta_mu_o(temperature: float, p_o2: float = 1.0) -> float:
    """μ_O of O2 gas (eV per O atom) at ``temperature`` (K, 0-2000) and ``p_o2`` (atm), relative to
    1/2 H°_O2(298.15 K): 1/2 [H(T) - H(298.15) - T S(T)] + 1/2 k_B T ln(p/p°), JANAF's H and S
    (linearly interpolated), p° = 1 bar."""
    t = float(temperature)
    if not JANAF_O2[0, 0] <= t <= JANAF_O2[-1, 0]:
        raise ValueError(f"T = {t} K is outside the JANAF table (0-{JANAF_O2[-1, 0]:.0f} K)")
    s = np.interp(t, JANAF_O2[:, 0], JANAF_O2[:, 1]) * 1e-3  # kJ/mol/K
    h = np.interp(t, JANAF_O2[:, 0], JANAF_O2[:, 2])  # kJ/mol
    pressure = 0.5 * K_B * t * math.log(p_o2 / ATM_PER_BAR) if t > 0 else 0.0
    return float(0.5 * (h - t * s) * KJ_MOL + pressure)


def onset_temperature(mu_o: float, p_o2: float = 1.0) -> float | None:
    """The temperature (K) at which O2 at ``p_o2`` (atm) has μ_O = ``mu_o`` (eV, relative to 1/2 H°_O2(298.15
    K)): 0.0 where ``mu_o`` lies above μ_O at 0 K (O2 released at any temperature), None where it lies below
    μ_O at 2000 K (the table's end) or is not finite."""
    if not np.isfinite(mu_o):
        return None
    t_max = float(JANAF_O2[-1, 0])
    if mu_o >= delta_mu_o(0.0, p_o2):
        return 0.0
    if mu_o < delta_mu_o(t_max, p_o2):
        return None
    return float(brentq(lambda t: delta_mu_o(t, p_o2) - mu_o, 0.0, t_max, xtol=1e-6))


@dataclass(frozen=True)
class OxygenRelease:
    """When a phase gives off O2 (:func:`oxygen_release_onset`).

    ``mu_o``: μ_O (eV per O atom, relative to the hull's O reference) below which it releases O2, given its
    own energy; ``t_onset``: the temperature (K) of O2 at ``p_o2`` atm with that μ_O (0.0: at any
    temperature; None: above 2000 K); ``products``: the reduced formulas it decomposes to there (O2 last),
    ``product_ids`` their ids; ``o_lost``: the fraction of its O released at the onset; ``mu_o_hull``: the
    onset of its composition's equilibrium assemblage on the hull (what ``PhaseDiagram.get_element_profile``
    gives: equal to ``mu_o`` for a phase on the hull, lower for a metastable one, 0 where that assemblage
    holds O2 itself); ``mu_o_abs``: ``mu_o`` plus the O reference's energy.
    """

    mu_o: float
    t_onset: float | None
    products: tuple[str, ...]
    product_ids: tuple[str, ...] = ()
    o_lost: float = float("nan")
    mu_o_hull: float = float("nan")
    mu_o_abs: float = float("nan")
    p_o2: float = 1.0
    reference: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


def _phase_diagram(hull, elements: list[str], exclude_ids: Iterable[str]) -> PhaseDiagram:
    if isinstance(hull, PhaseDiagram):
        missing = set(elements) - {e.symbol for e in hull.elements}
        if missing:
            raise ValueError(f"the phase diagram lacks {', '.join(sorted(missing))}")
        return hull
    if hasattr(hull, "phase_diagram"):
        return hull.phase_diagram(elements, tuple(exclude_ids))
    skip = set(map(str, exclude_ids))
    allowed = {Element(e) for e in elements}
    entries = [e for e in hull
               if set(e.composition.elements) <= allowed and str(getattr(e, "name", "")) not in skip]
    return PhaseDiagram(entries)


def _release(pd_: PhaseDiagram, comp: Composition, energy: float) -> tuple[float, Composition, float]:
    """(absolute μ_O* in eV, the critical composition it releases to, scaled to comp's non-O atoms, O lost per
    formula of comp) of ``comp`` with total ``energy`` (module docstring)."""
    o = Element("O")
    gc = Composition({el: amt for el, amt in comp.items() if el != o})
    n_x = comp[o]
    best = (-math.inf, gc, n_x)
    for cc in pd_.get_critical_compositions(Composition("O"), gc):
        rest = cc.num_atoms - cc[o]
        if rest <= 1e-10:
            continue  # pure O
        scaled = cc * (gc.num_atoms / rest)
        n_p = scaled[o]
        if n_p >= n_x - 1e-8:
            continue  # as O-rich as the phase or richer: no release
        mu = (energy - pd_.get_hull_energy(scaled)) / (n_x - n_p)
        if mu > best[0]:
            best = (mu, scaled, n_x - n_p)
    return best


def oxygen_release_onset(structure_or_composition, energy_per_atom: float, hull,
                         exclude_ids: Iterable[str] = (), p_o2: float = 1.0) -> OxygenRelease:
    """The onset of O2 release of an oxide (a charged cathode) with ``energy_per_atom`` on the hull's scale.

    ``hull``: a :class:`SystemHull` (or any object with ``phase_diagram(elements, exclude_ids)``), a pymatgen
    ``PhaseDiagram`` of its system or a list of entries; ``exclude_ids`` as for the hull. μ_O* is the
    highest O chemical potential at which some O-poorer assemblage of the hull plus O2 is lower in energy than
    the phase (module docstring); ``p_o2`` (atm) sets the temperature's pressure. ValueError for a phase
    without O or without another element, or a hull that cannot be built."""
    comp = _composition(structure_or_composition)
    if Element("O") not in comp:
        raise ValueError(f"{comp.reduced_formula} holds no O: no O2 release")
    if len(comp.elements) < 2:
        raise ValueError("O2 itself: no O2 release onset")
    if not np.isfinite(energy_per_atom):
        raise ValueError("no finite energy")
    pd_ = _phase_diagram(hull, [e.symbol for e in comp.elements], exclude_ids)
    ref = pd_.el_refs[Element("O")]
    mu_abs, cc, lost = _release(pd_, comp, energy_per_atom * comp.num_atoms)
    mu_hull_abs, _, _ = _release(pd_, comp, pd_.get_hull_energy(comp))
    mu = mu_abs - ref.energy_per_atom
    decomp = pd_.get_decomposition(cc)
    prods = sorted(decomp, key=lambda e: -decomp[e])
    notes = []
    t = onset_temperature(mu, p_o2)
    if t is None:
        notes.append("the onset lies above 2000 K (beyond the JANAF table)")
    elif t == 0.0:
        notes.append("O2 is released at any temperature (μ_O* above μ_O of O2 at 0 K)")
    return OxygenRelease(
        mu_o=float(mu), t_onset=t,
        products=(*(e.composition.reduced_formula for e in prods), "O2"),
        product_ids=tuple(str(e.name) for e in prods),
        o_lost=float(lost / comp[Element("O")]), mu_o_hull=float(mu_hull_abs - ref.energy_per_atom),
        mu_o_abs=float(mu_abs), p_o2=p_o2, reference=str(ref.name), notes=tuple(notes),
    )


# ----------------------------------------------------------------------------------------------
# volume change
# ----------------------------------------------------------------------------------------------


def _framework_volume(structure, ion: str) -> tuple[float, str]:
    s = as_structure(structure)
    frame = Composition({el: amt for el, amt in s.composition.items() if el.symbol != ion})
    if not len(frame):
        raise ValueError(f"{s.composition.reduced_formula}: nothing but the ion {ion}")
    reduced, factor = frame.get_reduced_composition_and_factor()
    return s.volume / factor, reduced.reduced_formula


def volume_change(charged, discharged, ion: str = "Li", signed: bool = False) -> float:
    """Volume change (%) between the charged and the discharged state per framework formula unit (the reduced
    composition without the ion), as pymatgen's ``InsertionElectrode.max_delta_volume``: 100 (V_max / V_min -
    1) of the two states, always ≥ 0. ``signed``: 100 (V_charged / V_discharged - 1), the change on removing
    the ion (negative: the cell shrinks). ValueError when the frameworks differ."""
    vc, fc = _framework_volume(charged, ion)
    vd, fd = _framework_volume(discharged, ion)
    if fc != fd:
        raise ValueError(f"different frameworks: {fc} (charged) and {fd} (discharged)")
    if signed:
        return 100.0 * (vc / vd - 1.0)
    return 100.0 * (max(vc, vd) / min(vc, vd) - 1.0)


# ----------------------------------------------------------------------------------------------
# the screen's table
# ----------------------------------------------------------------------------------------------

#: the columns :func:`stability_table` adds (after its ``prefix``)
COLUMNS = ("e_hull_charged", "e_hull_discharged", "o2_mu_onset", "o2_t_onset", "o2_products", "o2_lost",
           "volume_change", "reason")


def _reason(exc: Exception) -> str:
    return str(exc).strip() or type(exc).__name__


def stability_table(rows: pd.DataFrame, hull, ion: str = "Li", *, charged: str = "charged",
                    discharged: str = "discharged", e_charged: str = "e_charged",
                    e_discharged: str = "e_discharged", exclude: str | None = "exclude_ids",
                    p_o2: float = 1.0, prefix: str = "") -> pd.DataFrame:
    """What decides a cathode, per candidate row (structures and energies per atom on the hull's scale).

    Returns a frame on ``rows``' index with :data:`COLUMNS` (each after ``prefix``): E_hull of both states
    (eV/atom), the charged state's O2 release onset μ_O (eV) and temperature (K, at ``p_o2`` atm; NaN when
    above 2000 K), its products and the fraction of its O released, the volume change (%, pymatgen's
    max_delta_volume), and ``reason``: why a number is missing ('; '-joined, empty when all are there).
    ``exclude`` names an optional column of ids (a list or one id) left out of that row's hull (a known
    material checked as new). ``attrs["reasons"]`` counts the reasons, ``attrs["complete"]`` the rows without
    one, ``attrs["hull_missing"]`` the number of phases without an energy per chemical system (only systems
    that lack some; :meth:`SystemHull.missing`)."""
    out, gaps = [], {}
    for _, r in rows.iterrows():
        c, d = r.get(charged), r.get(discharged)
        ec, ed = float(r.get(e_charged, np.nan)), float(r.get(e_discharged, np.nan))
        ex = r.get(exclude, ()) if exclude else ()
        ex = (ex,) if isinstance(ex, str) else tuple(ex) if isinstance(ex, Iterable) else ()
        row = dict.fromkeys(COLUMNS, np.nan)
        row["o2_products"], why = "", []
        for side, s, e in (("charged", c, ec), ("discharged", d, ed)):
            if s is None or (isinstance(s, float) and np.isnan(s)):
                why.append(f"no {side} structure")
            elif not np.isfinite(e):
                why.append(f"no {side} energy")
            else:
                try:
                    row[f"e_hull_{side}"] = hull.e_above_hull(s, e, ex)
                except ValueError as exc:
                    why.append(f"no hull ({side}): {_reason(exc)}")
        for s in (c, d):
            if isinstance(s, Crystal | Structure) and hasattr(hull, "missing"):
                els = [e.symbol for e in _composition(s)]
                if system_name(els) not in gaps:
                    try:
                        gaps[system_name(els)] = len(hull.missing(els))
                    except ValueError:
                        gaps[system_name(els)] = -1
        if isinstance(c, Crystal | Structure) and np.isfinite(ec):
            try:
                o2 = oxygen_release_onset(c, ec, hull, ex, p_o2=p_o2)
                row.update(o2_mu_onset=o2.mu_o, o2_products=" + ".join(o2.products), o2_lost=o2.o_lost,
                           o2_t_onset=np.nan if o2.t_onset is None else o2.t_onset)
                if o2.t_onset is None:
                    why.append("O2 onset above 2000 K")
            except ValueError as exc:
                why.append(f"no O2 onset: {_reason(exc)}")
        if isinstance(c, Crystal | Structure) and isinstance(d, Crystal | Structure):
            try:
                row["volume_change"] = volume_change(c, d, ion)
            except ValueError as exc:
                why.append(f"no volume change: {_reason(exc)}")
        row["reason"] = "; ".join(dict.fromkeys(why))
        out.append(row)
    t = pd.DataFrame(out, index=rows.index, columns=list(COLUMNS))
    reasons = Counter(w.split(":")[0] for x in t["reason"] for w in (x.split("; ") if x else []))
    t = t.rename(columns={k: f"{prefix}{k}" for k in COLUMNS})
    t.attrs.update(reasons=dict(reasons), complete=int((t[f"{prefix}reason"] == "").sum()), rows=len(t),
                   p_o2=p_o2, ion=ion, hull_missing={k: v for k, v in gaps.items() if v})
    return t


def main(argv: list[str] | None = None) -> int:
    """``python -m lib.cathodes.stability build POTENTIAL SYSTEM [SYSTEM ...]``: every phase of the systems
    ('Co-Li-O') with the named potential's static energies (:func:`lib.cathodes.potentials.get_potential`),
    written to ``data/hulls/<model>/``; ``archive MODEL_NAME``: merge those files into ``records/hulls/``."""
    ap = argparse.ArgumentParser(prog="python -m lib.cathodes.stability")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="compute the hulls of chemical systems")
    b.add_argument("potential")
    b.add_argument("systems", nargs="+")
    a = sub.add_parser("archive", help="merge a model's per-system files into records/hulls/")
    a.add_argument("model_name")
    args = ap.parse_args(argv)
    if args.cmd == "archive":
        print(archive(args.model_name))
        return 0
    hull = SystemHull(get_potential(args.potential))
    hull.prepare(args.systems)
    for els in map(_symbols, args.systems):
        refs = ", ".join(f"{k} {i} ({e:.4f} eV/atom)" for k, (i, e) in hull.references(els).items())
        n, gaps = len(hull.phases(els)), len(hull.missing(els))
        print(f"{system_name(els)}: {n} phases, {gaps} without an energy; references {refs}")
    return 0


__all__ = ["SystemHull", "Relaxed", "Phase", "structure_sources", "system_name", "archive", "archived",
           "archive_file", "both_states", "OxygenRelease", "oxygen_release_onset", "delta_mu_o",
           "onset_temperature", "JANAF_O2", "volume_change", "stability_table", "COLUMNS", "HULLS",
           "ARCHIVED", "main"]


if __name__ == "__main__":
    raise SystemExit(main())
