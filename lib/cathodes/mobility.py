"""Ion mobility: migration barriers of the working ion by nudged elastic band (NEB), with any ASE calculator.

A cathode is only useful if its ion moves: an average voltage says nothing about rate. The standard first
look is the **migration barrier** of one ion hopping into a neighbouring vacancy, from a climbing-image NEB
(Henkelman, Uberuaga & Jónsson, J. Chem. Phys. 113, 9901 (2000)), here with the universal potentials of
:mod:`lib.cathodes.potentials` instead of DFT (minutes on a CPU instead of days), checked against published
DFT barriers (``data/neb_references.csv``, :func:`load_references`; docs/mobility.md).

**1. Hops** (:func:`find_hops`). The symmetry-distinct hops between the ion's sites: with
``pymatgen-analysis-diffusion`` installed, its ``DistinctPathFinder`` (hops up to the shortest length that
makes the ion's sites percolate, its own default); without it, the same idea with pymatgen alone: for each
symmetry-distinct ion site (``SpacegroupAnalyzer``'s equivalent sites), its ion neighbours up to the second
shortest ion–ion distance of any site, one hop per (class of the start site, class of the end site, length
within 0.02 Å). Both give the hops sorted by length; ``hops[0]`` is the shortest (in LiFePO4 the b channel).

**2. The band** (:func:`neb_barrier`). A supercell of the input cell (diagonal, every width ≥ ``min_length``,
8 Å by default, at most ``max_atoms`` atoms, 120: the widest such cell; :func:`choose_supercell`), with
**one vacancy**: the ion at the hop's end site is removed, and the hopping ion moves from its site to that
one. So the initial and the final state hold the same atoms in the same order, and for a hop between
equivalent sites they are the same structure up to symmetry (the profile must come out symmetric: the tests
check it). Both end points are relaxed first (positions only, cell fixed, FIRE to ``fmax``) with the same
calculator; the images between them are interpolated by IDPP (``NEB.interpolate(method="idpp", mic=True)``);
the band is relaxed with ASE's ``NEB`` (``method="improvedtangent"``; the moving images share the
calculator, each through a view that keeps its own results; the end points are frozen with their relaxed
energies) and FIRE: first without the climbing image to ``2·fmax`` (0.1 eV/Å at least), then with it to
``fmax``, at most ``max_steps`` steps in all. The barrier is ``max(E) − E(initial)`` (``barrier_forward``),
and ``max(E) − E(final)`` the other way (``barrier_backward``). ``status`` is ``converged`` only when both
end points and the band reached their ``fmax``; ``not converged`` keeps its numbers but says so; ``failed``
holds the error.

The energies are the calculator's own (a potential's MP2020 correction, :meth:`SevenNet.efs`, is a constant
of the composition and cancels in a barrier). The vacancy is a neutral one (the potentials know no charge
state: the electron left behind sits where the model puts it), and the cell is that of the fully intercalated
structure: the dilute-vacancy limit, which is what most DFT references compute too (``path_note`` says).

**3. The cache.** Every band is one JSON file under ``data/neb/<potential>/`` (``$COMPENDIUM_NEB_CACHE``
overrides ``data/neb``), named by a hash of the structure, the hop, the settings and the calculator
(:func:`lib.cathodes.relax.structure_key`, the relaxations' key), written atomically when the band is done:
a rerun reads it back and computes nothing, and a killed run over many hops resumes with the next one.

**4. The benchmark** (:func:`neb_bench`): the materials of ``data/neb_references.csv``, each on its structure
(:func:`reference_structure`): its MP id among the mirror's electrode pairs
(:func:`lib.data.electrodes.load_electrode_pairs`), else among every structure source
(:func:`lib.cathodes.stability.structure_sources`) by the exact id, else by formula and the row's
``spacegroup`` (the polymorph its ``path_note`` describes; the shared lookup
:func:`lib.cathodes.curves.find_structure`), the shortest hop of each, with a universal potential:
``neb_barrier_<m>`` (with ``material_id``, ``structure_source`` and ``structure_note``: which structure and
why), ``neb_barrier_ref_<m>`` and ``neb_seconds_<m>``.

    python -m lib.cathodes.mobility Li LiFePO4.cif                       # shortest hop, SevenNet-0
    python -m lib.cathodes.mobility Li LiFePO4.cif --hops 3 --potential chgnet
    python -m lib.predict --barrier Li LiFePO4.cif                       # the same from the predict command
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.singlepoint import SinglePointCalculator
from ase.optimize import FIRE
from ase.utils.forcecurve import fit_raw
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from lib.cathodes.relax import structure_key
from lib.paths import DATA, FIGURES, atomic_path
from lib.structures import as_structure

try:  # ASE >= 3.23 keeps NEB in ase.mep; older releases in ase.neb
    from ase.mep import NEB
except ImportError:  # pragma: no cover - older ASE
    from ase.neb import NEB

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from tqdm.auto import tqdm

CACHE = Path(os.environ.get("COMPENDIUM_NEB_CACHE", DATA / "neb"))  # one folder per potential below it
DEFAULT = object()  # the default cache folder of a potential: CACHE / potential
REFERENCES = DATA / "neb_references.csv"
DEFAULT_POTENTIAL = "sevennet"  # SevenNet-0 (lib.cathodes.potentials.POTENTIALS)


def _has_pathfinder() -> bool:
    try:
        from pymatgen.analysis.diffusion.neb.pathfinder import DistinctPathFinder  # noqa: F401
    except ImportError:
        return False
    return True


# ----------------------------------------------------------------------------------------------
# hops
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hop:
    """One hop of the ion: from site ``start`` of the structure to site ``end`` translated by ``image``
    (lattice vectors), ``length`` Å apart; in the NEB the ion at the end site is the one removed (the
    vacancy)."""

    ion: str
    start: int
    end: int
    image: tuple[int, int, int]
    length: float
    method: str = ""  # "pathfinder" (pymatgen-analysis-diffusion) or "neighbors" (pymatgen alone)

    def key(self) -> dict:
        """What identifies the hop in a cache key (not how it was found)."""
        return {"ion": self.ion, "start": self.start, "end": self.end, "image": list(self.image),
                "length": round(self.length, 4)}

    def vector(self, structure: Structure) -> np.ndarray:
        """The hop as a Cartesian vector (Å) in ``structure``."""
        df = structure[self.end].frac_coords + np.array(self.image) - structure[self.start].frac_coords
        return structure.lattice.get_cartesian_coords(df)


def _site_index(structure: Structure, frac: np.ndarray, tol: float = 0.05) -> tuple[int, tuple[int, ...]]:
    """The site of ``structure`` at fractional position ``frac`` (any periodic image; within ``tol`` Å) and
    the lattice translation from it to ``frac``."""
    frac = np.asarray(frac, float)
    d = structure.lattice.get_all_distances(structure.frac_coords, frac[None, :])[:, 0]
    i = int(np.argmin(d))
    if d[i] > tol:
        raise ValueError(f"no site at {np.round(frac, 4).tolist()} (the nearest is {d[i]:.3f} Å away)")
    image = tuple(int(v) for v in np.round(frac - structure[i].frac_coords))
    return i, image


def _pathfinder_hops(structure: Structure, ion: str, max_length: float | None, symprec: float) -> list[Hop]:
    from pymatgen.analysis.diffusion.neb.pathfinder import DistinctPathFinder

    finder = DistinctPathFinder(structure, ion, max_path_length=max_length, symprec=symprec)
    hops = []
    for p in finder.get_paths():
        i, im_i = _site_index(structure, p.isite.frac_coords)
        j, im_j = _site_index(structure, p.esite.frac_coords)
        image = tuple(int(b - a) for a, b in zip(im_i, im_j, strict=True))
        hops.append(Hop(ion, i, j, image, float(p.length), "pathfinder"))
    return hops


def _neighbor_hops(structure: Structure, ion: str, max_length: float | None, symprec: float) -> list[Hop]:
    sym = SpacegroupAnalyzer(structure, symprec=symprec).get_symmetrized_structure()
    groups = [g for g in sym.equivalent_indices if structure[g[0]].specie.symbol == ion]
    if not groups:
        return []
    klass = {i: k for k, g in enumerate(sym.equivalent_indices) for i in g}
    reach = max_length or min(structure.lattice.abc) + 0.01
    neighbors = {}
    for g in groups:
        nn = [n for n in structure.get_neighbors(structure[g[0]], r=reach) if n.specie.symbol == ion]
        neighbors[g[0]] = sorted(nn, key=lambda n: n.nn_distance)
    if max_length is None:  # each site reaches at least two others (the path finder's "1d" rule)
        second = [ns[1].nn_distance if len(ns) > 1 else (ns[0].nn_distance if ns else 0.0)
                  for ns in neighbors.values()]
        max_length = max(second) + 0.01
    hops: list[tuple[tuple[int, int], Hop]] = []
    for i, ns in neighbors.items():
        for n in ns:
            if n.nn_distance > max_length or n.nn_distance < 1e-3:
                continue
            pair = (klass[i], klass[n.index])  # one hop per (start class, end class, length within 0.02 Å)
            if any(p == pair and abs(h.length - n.nn_distance) < 0.02 for p, h in hops):
                continue
            image = tuple(int(v) for v in np.round(n.frac_coords - structure[n.index].frac_coords))
            hops.append((pair, Hop(ion, i, int(n.index), image, float(n.nn_distance), "neighbors")))
    return [h for _, h in hops]


def find_hops(structure, ion: str, max_length: float | None = None, method: str = "auto",
              symprec: float = 0.1) -> list[Hop]:
    """The symmetry-distinct hops of ``ion`` between its sites in ``structure``, shortest first (module
    docstring). ``method``: ``"pathfinder"`` (pymatgen-analysis-diffusion), ``"neighbors"`` (pymatgen
    alone) or ``"auto"`` (the first if installed); ``max_length`` (Å): the longest hop, else the method's
    default."""
    s = as_structure(structure)
    if ion not in {el.symbol for el in s.composition.elements}:
        raise ValueError(f"no {ion} in {s.composition.reduced_formula}")
    if method == "auto":
        method = "pathfinder" if _has_pathfinder() else "neighbors"
    if method == "pathfinder":
        hops = _pathfinder_hops(s, ion, max_length, symprec)
    elif method == "neighbors":
        hops = _neighbor_hops(s, ion, max_length, symprec)
    else:
        raise ValueError(f"unknown hop method {method!r}: auto, pathfinder or neighbors")
    return sorted(hops, key=lambda h: (round(h.length, 4), h.start, h.end))


# ----------------------------------------------------------------------------------------------
# the band
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NEBSettings:
    """How a band is built and relaxed; part of every cache key."""

    n_images: int = 5  # images between the end points
    fmax: float = 0.05  # eV/Å: end points and band
    max_steps: int = 400  # FIRE steps of the band (both stages together)
    relax_steps: int = 300  # FIRE steps of each end point
    k: float = 0.1  # spring constant, eV/Å²
    interpolation: str = "idpp"  # "idpp" or "linear"
    climb: bool = True
    min_length: float = 8.0  # Å: every width of the supercell at least this (if max_atoms allows)
    max_atoms: int = 120  # the supercell's atoms before the vacancy, at most

    def key(self) -> dict:
        return {**asdict(self), "optimizer": "FIRE", "method": "improvedtangent"}


@dataclass
class NEBResult:
    """One hop's band (module docstring). Energies in eV (total, the calculator's), path in Å."""

    key: str
    id: str
    ion: str
    potential: str
    hop: dict
    status: str  # converged | not converged | failed
    reason: str = ""
    supercell: list[int] = field(default_factory=list)
    n_atoms: int = 0  # in the band (with the vacancy)
    barrier_forward: float = math.nan  # max(E) - E(initial)
    barrier_backward: float = math.nan  # max(E) - E(final)
    energies: list[float] = field(default_factory=list)  # of every image, end points included
    path: list[float] = field(default_factory=list)  # cumulative distance along the band (all atoms, mic)
    fit_path: list[float] = field(default_factory=list)  # ASE's force-based cubic fit of the profile
    fit_energies: list[float] = field(default_factory=list)  # relative to the initial state
    end_fmax: list[float] = field(default_factory=list)  # largest force at the relaxed end points
    neb_fmax: float = math.nan  # largest NEB force at the end
    neb_steps: int = 0
    relax_steps: list[int] = field(default_factory=list)
    seconds: float = 0.0
    settings: dict = field(default_factory=dict)
    cell: list = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    images: list = field(default_factory=list)  # positions (Å) of every image
    cached: bool = field(default=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "converged"

    @property
    def barrier(self) -> float:
        """The forward barrier (eV)."""
        return self.barrier_forward

    @property
    def end_points_lowest(self) -> float:
        """How far (eV) the lowest interior image lies below the lower relaxed end point: 0 when the end points
        are the band's minima, as a barrier from them assumes; > 0 says the relaxed end points are not the
        minima of the path (the hop's real barrier is then :attr:`barrier_from_lowest`)."""
        if len(self.energies) < 3:
            return math.nan
        e = np.asarray(self.energies, float)
        return float(max(0.0, min(e[0], e[-1]) - e[1:-1].min()))

    @property
    def barrier_from_lowest(self) -> float:
        """max(E) − min(E) over the band's images (eV): the barrier when an image lies below the end points."""
        return float(np.max(self.energies) - np.min(self.energies)) if self.energies else math.nan

    def to_json(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "cached"}
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}

    @classmethod
    def from_json(cls, d: dict) -> NEBResult:
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__ and k != "cached"}
        for k in ("barrier_forward", "barrier_backward", "neb_fmax"):
            d[k] = math.nan if d.get(k) is None else float(d[k])
        return cls(**d, cached=True)

    def atoms(self) -> list[Atoms]:
        """The band's images as ASE Atoms (with their energies as single-point results)."""
        out = []
        for pos, e in zip(self.images, self.energies or [None] * len(self.images), strict=True):
            a = Atoms(numbers=self.numbers, positions=pos, cell=self.cell, pbc=True)
            if e is not None:
                a.calc = SinglePointCalculator(a, energy=e)
            out.append(a)
        return out


def choose_supercell(structure, min_length: float = 8.0, max_atoms: int = 120) -> tuple[int, int, int]:
    """The diagonal supercell (n1, n2, n3) of ``structure`` whose narrowest width (distance between
    opposite faces) is largest, every width at least ``min_length`` Å where ``max_atoms`` allows; fewest
    atoms on a tie."""
    s = as_structure(structure)
    m = s.lattice.matrix
    widths = np.array([s.volume / np.linalg.norm(np.cross(m[(i + 1) % 3], m[(i + 2) % 3])) for i in range(3)])
    need = np.maximum(1, np.ceil(min_length / widths - 1e-9)).astype(int)
    best, best_score = (1, 1, 1), None
    for n1 in range(1, need[0] + 1):
        for n2 in range(1, need[1] + 1):
            for n3 in range(1, need[2] + 1):
                n = np.array([n1, n2, n3])
                if len(s) * n.prod() > max_atoms and (n1, n2, n3) != (1, 1, 1):
                    continue
                score = (round(float(np.minimum(n * widths, min_length).min()), 3),
                         round(float((n * widths).min()), 3), -int(n.prod()))
                if best_score is None or score > best_score:
                    best, best_score = (n1, n2, n3), score
    return best


def hop_endpoints(structure, hop: Hop, supercell: Sequence[int]) -> tuple[Atoms, Atoms, int]:
    """The band's end points in the supercell: (initial, final, index of the moving ion). The ion at the hop's
    end site is removed; in ``final`` the moving ion sits at that site, every other atom as in ``initial``."""
    s = as_structure(structure)
    n = np.array(supercell, int)
    sc = s.copy()
    sc.make_supercell(np.diag(n))
    f_start = s[hop.start].frac_coords / n
    f_end = (s[hop.end].frac_coords + np.array(hop.image)) / n
    a, _ = _site_index(sc, f_start)
    b, _ = _site_index(sc, f_end)
    if a == b:
        raise ValueError("the hop ends on its own periodic image: use a larger supercell (min_length)")
    sc.remove_sites([b])
    a = a if a < b else a - 1
    initial = AseAtomsAdaptor.get_atoms(sc)
    for key in ("initial_magmoms", "initial_charges"):
        initial.arrays.pop(key, None)
    initial.info = {}
    final = initial.copy()
    pos = final.get_positions()
    pos[a] = initial.positions[a] + hop.vector(s)
    final.set_positions(pos)
    return initial, final, a


def _calculator_name(calc) -> str:
    name = getattr(calc, "name", None) or type(calc).__name__
    return str(name).lower().replace(" ", "_")


def _calculator_params(calc) -> str:
    try:
        return json.dumps(getattr(calc, "parameters", {}) or {}, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(getattr(calc, "parameters", ""))


def neb_key(structure, hop: Hop, settings: NEBSettings, potential: str, calc=None) -> str:
    """The cache key of a band: :func:`lib.cathodes.relax.structure_key` of the structure with the hop, the
    settings and the calculator's parameters as its settings."""
    extra = {"kind": "neb", "hop": hop.key(), "settings": settings.key(),
             "calculator": None if calc is None else [type(calc).__name__, _calculator_params(calc)]}
    return structure_key(as_structure(structure), potential, json.dumps(extra, sort_keys=True))


def _folder(cache, potential: str) -> Path | None:
    if cache is DEFAULT:
        return CACHE / potential
    return Path(cache) if cache is not None else None


def _read(folder: Path | None, key: str) -> NEBResult | None:
    if folder is None:
        return None
    try:
        return NEBResult.from_json(json.loads((folder / f"{key}.json").read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):  # a damaged record: computed again (and overwritten)
        return None


def _write(folder: Path | None, r: NEBResult) -> None:
    if folder is None:
        return
    with atomic_path(folder / f"{r.key}.json") as tmp:
        tmp.write_text(json.dumps(r.to_json()))


def _relax(atoms: Atoms, calc, fmax: float, steps: int) -> tuple[float, float, int]:
    """Relax positions (cell fixed) in place; (energy, largest force, steps). The atoms keep a single-point
    calculator with the final energy and forces, so the band never recomputes its end points."""
    atoms.calc = calc
    opt = FIRE(atoms, logfile=None)
    opt.run(fmax=fmax, steps=steps)
    e, f = float(atoms.get_potential_energy()), atoms.get_forces()
    atoms.calc = SinglePointCalculator(atoms, energy=e, forces=f.copy())
    return e, float(np.sqrt((f**2).sum(axis=1)).max()), int(opt.get_number_of_steps())


class _ImageCalculator(Calculator):
    """One NEB image's view of a shared calculator: it keeps its own results, so the band asks the model once
    per image and position (ASE's optimizers read the NEB forces three times a step, and a calculator shared
    by all images remembers only the last image it saw: three times the model calls otherwise)."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, calc):
        super().__init__()
        self.shared = calc

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        a = self.atoms.copy()
        a.calc = self.shared
        self.results = {"energy": float(a.get_potential_energy()), "forces": np.array(a.get_forces())}


def _round(a, nd: int = 5) -> list:
    return np.round(np.asarray(a, float), nd).tolist()


def neb_barrier(structure, hop: Hop, calculator, *, settings: NEBSettings | None = None,
                potential: str | None = None, cache=DEFAULT, id: str = "",
                recompute: bool = False) -> NEBResult:
    """The climbing-image NEB of one ``hop`` of ``structure`` with an ASE ``calculator`` (module docstring).

    ``potential``: the name of the cache folder (default: the calculator's name); ``cache``: ``DEFAULT``
    (``data/neb/<potential>/``), a folder, or None (no cache); ``recompute``: ignore a cached band.
    """
    settings = settings or NEBSettings()
    s = as_structure(structure)
    potential = potential or _calculator_name(calculator)
    key = neb_key(s, hop, settings, potential, calculator)
    folder = _folder(cache, potential)
    if not recompute and (done := _read(folder, key)) is not None:
        done.id = id or done.id  # the caller's name for the structure (not part of the key)
        return done
    t0 = time.perf_counter()
    r = NEBResult(key=key, id=id or s.composition.reduced_formula, ion=hop.ion, potential=potential,
                  hop={**hop.key(), "method": hop.method}, status="failed", settings=settings.key())
    try:
        n = choose_supercell(s, settings.min_length, settings.max_atoms)
        initial, final, _ = hop_endpoints(s, hop, n)
        r.supercell, r.n_atoms = list(n), len(initial)
        r.cell, r.numbers = _round(initial.cell[:], 6), initial.numbers.tolist()
        e0, f0, s0 = _relax(initial, calculator, settings.fmax, settings.relax_steps)
        e1, f1, s1 = _relax(final, calculator, settings.fmax, settings.relax_steps)
        r.end_fmax, r.relax_steps = [f0, f1], [s0, s1]
        images = [initial] + [initial.copy() for _ in range(settings.n_images)] + [final]
        for img in images[1:-1]:
            img.calc = _ImageCalculator(calculator)
        neb = NEB(images, k=settings.k, climb=False, method="improvedtangent")
        neb.interpolate(method=settings.interpolation, mic=True, apply_constraint=False)
        steps = 0
        stages = [(max(2 * settings.fmax, 0.1), settings.max_steps // 3)] if settings.climb else []
        stages.append((settings.fmax, settings.max_steps))
        converged = False
        for k, (fmax, cap) in enumerate(stages):
            neb.climb = settings.climb and k == len(stages) - 1
            opt = FIRE(neb, logfile=None)
            converged = bool(opt.run(fmax=fmax, steps=max(cap - steps, 0)))
            steps += int(opt.get_number_of_steps())
        energies, forces = np.empty(len(images)), []
        for i, img in enumerate(images):  # energy, then forces of the same image: one calculation each
            energies[i] = img.get_potential_energy()
            forces.append(img.get_forces())
        positions = [img.get_positions() for img in images]
        fit = fit_raw(energies, forces, positions, initial.cell, initial.pbc)
        r.energies, r.path = _round(energies, 6), _round(fit.path, 5)
        r.fit_path, r.fit_energies = _round(fit.fit_path, 4), _round(fit.fit_energies, 5)
        r.images = [_round(p, 4) for p in positions]
        r.barrier_forward = float(energies.max() - energies[0])
        r.barrier_backward = float(energies.max() - energies[-1])
        r.neb_fmax, r.neb_steps = float(neb.get_residual()), steps
        ends_ok = max(f0, f1) <= settings.fmax * 1.0001
        r.status = "converged" if converged and ends_ok else "not converged"
        if not converged:
            r.reason = f"band not below {settings.fmax} eV/Å in {settings.max_steps} steps ({r.neb_fmax:.3f})"
        elif not ends_ok:
            r.reason = f"end points not below {settings.fmax} eV/Å in {settings.relax_steps} steps"
    except Exception as exc:  # noqa: BLE001 - one hop's failure is its own row, never the whole run's
        r.status, r.reason = "failed", f"{type(exc).__name__}: {exc}"
    r.seconds = time.perf_counter() - t0
    if r.status != "failed":
        _write(folder, r)
    return r


def barriers(structure, ion: str, calculator, hops: Sequence[Hop] | int | None = None, *,
             settings: NEBSettings | None = None, potential: str | None = None, cache=DEFAULT, id: str = "",
             progress: bool = True) -> list[NEBResult]:
    """The bands of several hops of ``ion`` (``hops``: a list, the first N distinct ones, or None: all of
    :func:`find_hops`), one after another with a progress bar; each is cached as it finishes."""
    s = as_structure(structure)
    if hops is None or isinstance(hops, int):
        found = find_hops(s, ion)
        hops = found if hops is None else found[:hops]
    out = []
    for hop in tqdm(list(hops), desc=f"NEB {id or s.composition.reduced_formula}", disable=not progress):
        out.append(neb_barrier(s, hop, calculator, settings=settings, potential=potential, cache=cache,
                               id=id))
    return out


def barrier_table(results: Iterable[NEBResult]) -> pd.DataFrame:
    """One row per band: id, ion, hop length, both barriers, status, sizes and time."""
    rows = [{"id": r.id, "ion": r.ion, "potential": r.potential, "hop_length [Å]": r.hop.get("length"),
             "barrier_forward [eV]": r.barrier_forward, "barrier_backward [eV]": r.barrier_backward,
             "status": r.status, "reason": r.reason, "supercell": "x".join(map(str, r.supercell)),
             "n_atoms": r.n_atoms, "neb_steps": r.neb_steps, "seconds": round(r.seconds, 1),
             "cached": r.cached, "image below the end points [eV]": r.end_points_lowest,
             "barrier from the lowest image [eV]": r.barrier_from_lowest}
            for r in results]
    return pd.DataFrame(rows)


def plot_profile(results: NEBResult | Sequence[NEBResult], ax=None):
    """The energy along each band (images as points, ASE's force-based fit as a line), relative to its
    initial state; returns the axes."""
    import matplotlib.pyplot as plt

    results = [results] if isinstance(results, NEBResult) else list(results)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for r in results:
        if not r.energies:
            continue
        e = np.array(r.energies) - r.energies[0]
        label = f"{r.id} {r.ion} {r.hop.get('length', 0):.2f} Å: {r.barrier_forward:.3f} eV"
        (line,) = ax.plot(r.fit_path, r.fit_energies, "-", label=label)
        ax.plot(r.path, e, "o", color=line.get_color())
    ax.set_xlabel("path [Å]")
    ax.set_ylabel("energy − initial [eV]")
    ax.axhline(0, color="0.7", lw=0.8, zorder=0)
    ax.legend(fontsize=8)
    return ax


# ----------------------------------------------------------------------------------------------
# published barriers and the benchmark
# ----------------------------------------------------------------------------------------------


def load_references(path: str | Path | None = None) -> pd.DataFrame:
    """The published DFT migration barriers of ``data/neb_references.csv`` (one row per material; module
    docstring and docs/mobility.md)."""
    return pd.read_csv(path or REFERENCES, dtype={"mp_id_if_known": str}, keep_default_na=False,
                       na_values={"barrier_eV": [""]})


def reference_structure(row, pairs: pd.DataFrame, sources=None):
    """The structure of a reference row (``data/neb_references.csv``) as a
    :class:`lib.cathodes.curves.Found` (``material_id``, ``structure``, ``source``, ``how``: which and why, or
    why none). In order: its MP id among the electrode pairs' end members; without an id and without a
    ``spacegroup``, the most stable (lowest formation energy known) discharged end of its formula and ion
    among the pairs (as before); otherwise, with ``sources`` (a structure table, a loader, or
    :data:`lib.cathodes.curves.AUTO` for :func:`lib.cathodes.stability.structure_sources`), the shared lookup
    :func:`lib.cathodes.curves.find_structure`: the exact id, else the row's formula and ``spacegroup`` (the
    polymorph its ``path_note`` describes), the fewest sites first. With ``sources`` None an id the pairs lack
    gives no structure: no other structure stands in for it."""
    from lib.cathodes.curves import Found, find_structure, resolve_sources

    mid = str(row.get("mp_id_if_known") or "").strip()
    sg = str(row.get("spacegroup") or "").strip() or None
    if mid:
        for col, struct in (("low_mpid", "discharged"), ("high_mpid", "charged")):
            hit = pairs[pairs[col] == mid] if col in pairs else pairs.iloc[:0]
            if len(hit):
                s = as_structure(hit.iloc[0][struct])
                pair = hit.iloc[0]["battery_id"] if "battery_id" in hit else ""
                return Found(mid, s, "electrode_pairs", "", len(s), True,
                             f"{mid} (electrode_pairs, {pair} {struct} end): the reference's own id")
    elif sg is None:
        hit = pairs[(pairs["formula_discharged"] == row["formula"]) & (pairs["ion"] == row["ion"])]
        if not len(hit):
            return Found(None, None,
                         how=f"no {row['formula']} ({row['ion']}) discharged end in the electrode pairs")
        if "ef_discharged" in hit:
            hit = hit.sort_values("ef_discharged", na_position="last")
        s = as_structure(hit.iloc[0]["discharged"])
        return Found(str(hit.iloc[0]["low_mpid"]), s, "electrode_pairs", "", len(s), False,
                     f"{hit.iloc[0]['low_mpid']} (electrode_pairs): the most stable discharged "
                     f"{row['formula']} of the pairs (the reference names no id and no space group)")
    which = ", ".join(x for x in (row["ion"], mid, sg) if x)
    if sources is None:
        return Found(None, None, how=f"no {row['formula']} ({which}) structure in the electrode pairs")
    try:
        table = resolve_sources(sources)
    except Exception as exc:  # noqa: BLE001 - a source that cannot be read: said why
        return Found(None, None, how=f"no {row['formula']} ({which}) structure in the electrode pairs, and "
                     f"the structure sources could not be read ({exc})")
    found = find_structure(table, row["formula"], sg, material_id=mid or None)
    if not found.ok:
        found.how = f"not in the electrode pairs; {found.how}"
    return found


def _reference_structure(row, pairs: pd.DataFrame, sources=None):
    """(material id, Structure) of a reference row (:func:`reference_structure`); (None, None) when there
    is none."""
    f = reference_structure(row, pairs, sources)
    return (f.material_id, f.structure) if f.ok else (None, None)


def neb_bench(potential: str = DEFAULT_POTENTIAL, materials: Sequence[str] | None = None, *,
              settings: NEBSettings | None = None, cache=DEFAULT, pairs: pd.DataFrame | None = None,
              references: pd.DataFrame | None = None, sources="auto") -> Iterator[dict]:
    """Benchmark lines: for each reference material (``materials``: names of ``data/neb_references.csv``,
    default all) whose structure is found (:func:`reference_structure`: the electrode pairs, else ``sources``,
    by default every structure source, loaded once when a material needs it; None: the pairs alone), the
    shortest hop's barrier with ``potential``:
    ``{"name": "neb_barrier_<m>", "value", "unit": "eV", ...}``, ``neb_barrier_ref_<m>`` (the published one)
    and ``neb_seconds_<m>`` (wall time of the band; 0 when it came from the cache, whose original time is
    ``computed_seconds``). A material without a structure gives its lines with value NaN and the reason."""
    from lib.cathodes.curves import sources_loader
    from lib.cathodes.potentials import get_potential

    sources = sources_loader(sources)
    refs = references if references is not None else load_references()
    if materials is not None:
        unknown = set(materials) - set(refs["material"])
        if unknown:
            raise ValueError(f"no reference for {sorted(unknown)}; known: {', '.join(refs['material'])}")
        refs = refs[refs["material"].isin(materials)]
    if pairs is None:
        from lib.data.electrodes import load_electrode_pairs

        pairs = load_electrode_pairs()
    pot = get_potential(potential)
    for _, row in refs.iterrows():
        m = row["material"]
        ref = {"name": f"neb_barrier_ref_{m}", "value": float(row["barrier_eV"]), "unit": "eV",
               "source": row["source"], "doi": row["doi"], "path": row["path_note"]}
        found = reference_structure(row, pairs, sources)
        mid, s = found.material_id, found.structure
        if s is None:
            why = found.how
            yield {"name": f"neb_barrier_{m}", "value": math.nan, "unit": "eV", "potential": pot.name,
                   "reason": why}
            yield ref
            yield {"name": f"neb_seconds_{m}", "value": math.nan, "unit": "s", "reason": why}
            continue
        t0 = time.perf_counter()
        hop = find_hops(s, row["ion"])[0]
        r = neb_barrier(s, hop, pot.ase_calculator(), settings=settings, potential=pot.name, cache=cache,
                        id=f"{m} ({mid})")
        extra = {"potential": pot.name, "material_id": mid, "structure_source": found.source,
                 "structure_note": found.how, "hop_length": round(hop.length, 3),
                 "status": r.status, "reason": r.reason, "barrier_backward": r.barrier_backward,
                 "image_below_end_points": r.end_points_lowest, "barrier_from_lowest_image": r.barrier_from_lowest,
                 "supercell": r.supercell, "n_atoms": r.n_atoms, "cached": r.cached}
        if r.end_points_lowest > 0.05:  # said on the line: the barrier from the end points understates the hop
            extra["warning"] = (f"an image lies {r.end_points_lowest:.2f} eV below the relaxed end points: the "
                                f"end points are not the path's minima; from the lowest image "
                                f"{r.barrier_from_lowest:.3f} eV")
        yield {"name": f"neb_barrier_{m}", "value": r.barrier_forward, "unit": "eV", **extra}
        yield ref
        seconds = 0.0 if r.cached else time.perf_counter() - t0
        yield {"name": f"neb_seconds_{m}", "value": seconds, "unit": "s",
               "computed_seconds": round(r.seconds, 1), "potential": pot.name, "cached": r.cached}


# ----------------------------------------------------------------------------------------------
# command line (also python -m lib.predict --barrier ION FILE.cif)
# ----------------------------------------------------------------------------------------------


def barrier_cli(ion: str, path: str | Path, potential: str | None = None, hops: int = 1,
                out: str | None = None, figure: str | Path | None = None, device: str | None = None,
                progress: bool = True, settings: NEBSettings | None = None) -> int:
    """Bands of the first ``hops`` distinct hops of ``ion`` in one CIF with a universal potential: the table
    to ``out`` (CSV; default: printed) and the energy along the path to ``figure`` (default:
    ``figures/neb_<file>_<ion>.png``, or ``out`` with ``.png``). Exit status 0 when a barrier was computed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lib.cathodes.potentials import POTENTIALS, get_potential
    from lib.data.sources.files import read_cif_text
    from lib.structures import parse_cif

    name = potential or DEFAULT_POTENTIAL
    if name not in POTENTIALS:
        print(f"error: unknown potential {name!r}; known: {', '.join(POTENTIALS)}", file=sys.stderr)
        return 2
    path = Path(path)
    try:
        s = as_structure(parse_cif(read_cif_text(path)))
        found = find_hops(s, ion)
    except (OSError, ValueError) as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
        return 1
    if not found:
        print(f"error: {path}: no hop of {ion} found", file=sys.stderr)
        return 1
    pot = get_potential(name) if device is None else POTENTIALS[name](device=device)
    stem = path.name[:-4] if path.name.lower().endswith(".cif") else path.name
    results = barriers(s, ion, pot.ase_calculator(), found[:max(hops, 1)], settings=settings,
                       potential=pot.name, id=stem, progress=progress)
    table = barrier_table(results)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out, index=False)
    else:
        table.to_csv(sys.stdout, index=False, float_format="%.4f")
    fig_path = Path(figure) if figure else (
        Path(out).with_suffix(".png") if out else FIGURES / f"neb_{stem}_{ion}.png")
    fig_path.parent.mkdir(parents=True, exist_ok=True)
    ax = plot_profile(results)
    ax.set_title(f"{stem}: {ion} migration ({pot.name})", fontsize=9)
    ax.figure.tight_layout()
    ax.figure.savefig(fig_path, dpi=150)
    plt.close(ax.figure)
    done = [r for r in results if r.status != "failed"]
    print(f"{len(done)} of {len(results)} band(s) computed ({sum(r.ok for r in results)} converged); "
          f"figure {fig_path}" + (f"; table {out}" if out else ""), file=sys.stderr)
    for r in results:
        if r.reason:
            print(f"  hop {r.hop.get('length', 0):.2f} Å: {r.status}: {r.reason}", file=sys.stderr)
    return 0 if done else 1


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.cathodes.mobility",
                                 description="Migration barriers of the working ion by climbing-image NEB "
                                 "with a universal potential (cached).")
    ap.add_argument("ion", help="the working ion, e.g. Li or Na")
    ap.add_argument("cif", help="the (discharged) structure")
    ap.add_argument("--potential", default=DEFAULT_POTENTIAL,
                    help="a name of lib.cathodes.potentials.POTENTIALS (default sevennet: SevenNet-0)")
    ap.add_argument("--hops", type=int, default=1, help="the first N distinct hops, shortest first (1)")
    ap.add_argument("--out", help="the table as CSV (default: printed)")
    ap.add_argument("--figure", help="the energy profile figure (default: figures/neb_<file>_<ion>.png)")
    ap.add_argument("--device", default=None, help="cpu, cuda ... (default: the potential's)")
    args = ap.parse_args(argv)
    return barrier_cli(args.ion, args.cif, args.potential, args.hops, args.out, args.figure, args.device)


__all__ = [
    "CACHE", "DEFAULT", "REFERENCES", "DEFAULT_POTENTIAL", "Hop", "NEBSettings", "NEBResult", "find_hops",
    "choose_supercell", "hop_endpoints", "neb_key", "neb_barrier", "barriers", "barrier_table",
    "plot_profile", "load_references", "neb_bench", "barrier_cli", "main",
]

if __name__ == "__main__":
    raise SystemExit(main())
