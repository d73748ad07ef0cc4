"""Energies above the convex hull, on one consistent energy scale (pymatgen ``PhaseDiagram``).

Two hulls, one interface (``e_above_hull(structure, energy_per_atom, exclude_ids=())``):

- :class:`Hull`: the mirror's phases with their **DFT formation energies** (MP 2020), elements at 0. A
  candidate's energy must then be a formation energy (a GNN's prediction).
- :class:`PotentialHull`: the mirror's phases of a chemical system with **a universal potential's energies**
  (relaxed with it by default, :mod:`lib.cathodes.relax`, cached per structure), the elements' references
  from the same model (the lowest-energy elemental phase of the mirror, relaxed like the rest). A candidate's
  energy must be that model's total energy per atom (relaxed the same way). Everything on the hull then comes
  from one model and one relaxation protocol, so the model's systematic errors largely cancel, as they do
  for DFT; mixing its energies with DFT's would not (the scales differ by the model's errors and, for
  CHGNet, by nothing else: both carry the MP2020 corrections, which must not be applied again).

Which phases: every mirror entry whose elements lie in the system, or, with ``window`` (eV/atom), only those
within ``window`` of the **DFT** hull, and always each element's lowest-energy elemental phase (the reference): a phase far above the DFT hull practically never becomes a vertex of
another model's hull, and leaving it out saves most of the relaxations (the mirror holds many metastable
polymorphs). A chemical system's diagram is built once and kept.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition, Element

from lib.cathodes.potentials import UniversalPotential
from lib.cathodes.relax import relax
from lib.structures import Crystal, as_structure

ENERGY = "formation_energy_per_atom"


def _composition(z: np.ndarray, n: np.ndarray) -> Composition:
    return Composition({Element.from_Z(int(a)): int(b) for a, b in zip(z, n, strict=True)})


class Hull:
    """Energies above the convex hull of a table's phases (pymatgen ``PhaseDiagram`` on E_f, elements at 0).

    One phase diagram per chemical system, built on first use from every table entry whose elements lie
    in it; ``exclude_ids`` leaves entries out (e.g. a known material checked as if it were new).
    """

    scale = "formation"

    def __init__(self, table: pd.DataFrame, energy: str = ENERGY):
        t = table[table[energy].notna()].drop_duplicates("material_id")
        self._by_elements: dict[frozenset, list[tuple[str, tuple, float]]] = {}
        self.crystals: dict[str, Crystal] = {}
        for mid, c, ef in zip(t["material_id"], t["structure"], t[energy], strict=True):
            z, n = np.unique(c.numbers, return_counts=True)
            key = frozenset(z.tolist())
            self._by_elements.setdefault(key, []).append((str(mid), (z, n), float(ef) * int(n.sum())))
            self.crystals[str(mid)] = c
        self._pd: dict = {}

    def phases(self, elements: Sequence[str]) -> list[tuple[str, tuple, float]]:
        """(id, (atomic numbers, counts), energy of the cell) of every phase whose elements lie in ``elements``."""
        els = sorted({Element(e).Z for e in elements})
        out = []
        for r in range(1, len(els) + 1):
            for sub in itertools.combinations(els, r):
                out += self._by_elements.get(frozenset(sub), [])
        return out

    def _entries(self, elements: Sequence[str], exclude_ids: Sequence[str]) -> list[PDEntry]:
        els = sorted({Element(e).Z for e in elements})
        entries = [PDEntry(Composition({Element.from_Z(z): 1}), 0.0, name=Element.from_Z(z).symbol) for z in els]
        return entries + [PDEntry(_composition(*zn), e, name=mid) for mid, zn, e in self.phases(elements)
                          if mid not in exclude_ids]

    def phase_diagram(self, elements: Sequence[str], exclude_ids: Sequence[str] = ()) -> PhaseDiagram:
        """pymatgen's PhaseDiagram of the chemical system ``elements`` (symbols), cached."""
        key = (frozenset(Element(e).Z for e in elements), frozenset(exclude_ids))
        if key not in self._pd:
            self._pd[key] = PhaseDiagram(self._entries(elements, exclude_ids))
        return self._pd[key]

    def e_above_hull(self, structure, energy_per_atom: float, exclude_ids: Sequence[str] = ()) -> float:
        """eV/atom above (negative: below) the hull of a structure (Crystal/Structure/Composition) with an
        energy per atom on this hull's scale."""
        comp = structure if isinstance(structure, Composition) else as_structure(structure).composition
        if not np.isfinite(energy_per_atom):
            return float("nan")
        pd_ = self.phase_diagram([e.symbol for e in comp], exclude_ids)
        return float(pd_.get_e_above_hull(PDEntry(comp, energy_per_atom * comp.num_atoms), allow_negative=True))

    def dft_e_above_hull(self, elements: Sequence[str]) -> dict[str, float]:
        """Each phase of the system's DFT energy above this hull (eV/atom), by id."""
        pd_ = self.phase_diagram(elements)
        return {e.name: float(pd_.get_e_above_hull(e)) for e in pd_.all_entries if e.name.startswith(("mp-", "mvc-"))}


class PotentialHull(Hull):
    """The mirror's phases with a universal potential's energies (module docstring).

    ``dft``: the DFT :class:`Hull` of the same table (for ``window`` and the phases' structures);
    ``relaxed``: relax the phases with the model (cached) or take static energies of the mirror's structures.
    ``max_atoms``: phases with more atoms in the cell are left out (their relaxation costs the most; a
    skipped phase is counted in ``skipped``).
    """

    scale = "total"

    def __init__(self, dft: Hull, model: UniversalPotential, relaxed: bool = True, window: float | None = 0.1,
                 max_atoms: int | None = 120, progress: bool = False, **relax_kwargs):
        self.dft, self.model, self.relaxed, self.window, self.max_atoms = dft, model, relaxed, window, max_atoms
        self.progress, self.relax_kwargs = progress, relax_kwargs
        self._energy: dict[str, float] = {}  # eV/atom by id, NaN where not usable
        self.status: dict[str, str] = {}
        self.skipped: set[str] = set()
        self._pd: dict = {}

    def _chosen(self, elements: Sequence[str]) -> list[tuple[str, tuple, float]]:
        """The phases of the system this hull uses: those within the window and size limits, and always each
        element's lowest-energy elemental phase of the mirror (the references; whatever its size)."""
        phases = self.dft.phases(elements)
        refs = {}
        for p in phases:
            if len(p[1][0]) == 1:
                z, e = int(p[1][0][0]), p[2] / int(p[1][1].sum())
                if z not in refs or e < refs[z][1]:
                    refs[z] = (p[0], e)
        ref_ids = {mid for mid, _ in refs.values()}
        eh = self.dft.dft_e_above_hull(elements) if self.window is not None else {}
        keep = []
        for p in phases:
            if p[0] in ref_ids:
                keep.append(p)
            elif self.window is not None and eh.get(p[0], np.inf) > self.window:
                continue
            elif self.max_atoms is not None and int(p[1][1].sum()) > self.max_atoms:
                self.skipped.add(p[0])
            else:
                keep.append(p)
        return keep

    def energies(self, ids: Sequence[str]) -> dict[str, float]:
        """The model's energy per atom of mirror phases (relaxed or static), computed once each."""
        todo = [i for i in dict.fromkeys(ids) if i not in self._energy]
        if todo:
            crystals = [self.dft.crystals[i] for i in todo]
            if self.relaxed:
                for i, r in zip(todo, relax(self.model, crystals, ids=todo, progress=self.progress,
                                            **self.relax_kwargs), strict=True):
                    self._energy[i] = r.energy_per_atom if r.ok else np.nan
                    self.status[i] = r.status
            else:
                e, _ = self.model.energies(crystals, progress=self.progress)
                self._energy.update(zip(todo, map(float, e), strict=True))
        return {i: self._energy[i] for i in ids}

    def prepare(self, systems: Sequence[Sequence[str]]) -> None:
        """Compute the energies of the phases of many chemical systems in one batch (one relaxation call)."""
        ids = [p[0] for els in systems for p in self._chosen(els)]
        self.energies(ids)

    def _entries(self, elements: Sequence[str], exclude_ids: Sequence[str]) -> list[PDEntry]:
        phases = [p for p in self._chosen(elements) if p[0] not in exclude_ids]
        e = self.energies([p[0] for p in phases])
        entries = [PDEntry(_composition(*zn), e[mid] * int(zn[1].sum()), name=mid)
                   for mid, zn, _ in phases if np.isfinite(e[mid])]
        have = {el for en in entries if len(en.composition) == 1 for el in en.composition}
        missing = [x for x in elements if Element(x) not in have]
        if missing:
            raise ValueError(f"{self.model.name} hull of {'-'.join(elements)}: no usable elemental phase of "
                             f"{', '.join(missing)} in the mirror (within the window, relaxed)")
        return entries


__all__ = ["Hull", "PotentialHull"]
