"""Voltage curves of insertion electrodes: the steps between the charged and the discharged state, not only
their average.

An average voltage (:mod:`lib.cathodes.electrodes`) needs two structures; a voltage *curve* needs the stable
states in between. For a pair (charged host A·I_xc, discharged A·I_xd, working ion I) this module

1. **enumerates intermediate ion contents** x = xc + f·(xd − xc) (default: quarters, f = ¼, ½, ¾) with
   pymatgen's own ordering machinery: the discharged structure (reduced to its primitive cell, then repeated
   into the smallest supercell, at most ``max_cells`` primitive cells and ``max_atoms`` atoms, in which the
   content is a whole number of ions) gets a partial occupancy x/xd on every ion site, and
   ``OrderDisorderedStructureTransformation`` ranks the ion/vacancy orderings by their Ewald energy (its
   ``EwaldMinimizer``: a branch and bound over the orderings that returns the lowest ones). The charges
   come from ``BVAnalyzer`` (or ``add_oxidation_state_by_guess``); the charge of
   the removed ions goes to the redox-active cations (transition metals, else every other cation) as a
   fractional oxidation state, so every ordering is a neutral cell. Where no oxidation states can be
   assigned the ion alone is charged (its ions are spread apart over a neutralising background). The lowest
   ``n_orderings`` distinct orderings are kept (equivalent ones, with equal Ewald energies, are told apart by
   pymatgen's ``StructureMatcher``); a supercell in which the content has fewer distinct orderings than that
   gives way to the next larger one that has them, within the limits. pymatgen's
   ``EnumerateStructureTransformation`` would be the exhaustive route, but it needs the enumlib executables
   (``enum.x``, ``makestr.x``), which no wheel ships.
2. **computes their energies** with a universal potential, relaxed (cell and positions, batched:
   :func:`lib.cathodes.relax.relax`; only ``converged`` ones are used) or static (``relax=False``:
   the potential's cached ``energies``), together with the two given end states;
3. **builds the hull in ion content**: the lowest energy per framework formula unit at each content, and
   pymatgen's ``InsertionElectrode.from_entries`` on those entries (total energies as
   ``ComputedStructureEntry``, the ion's metal from the same potential, ``pot.ion_energy``), which keeps the
   stable ones and makes one ``InsertionVoltagePair`` per step. The result, a :class:`Curve`, holds the steps
   (x range, voltage, capacity in mAh/g per mass of the discharged state, as pymatgen normalises), the average
   voltage, the total capacity and the capacity *accessible below a cutoff voltage* (default 4.5 V, about
   where carbonate electrolytes oxidise): the capacity of the steps whose voltage is at most the cutoff;
4. draws it (:func:`plot_curve`; a curve that could not be made says why on the axes);
5. **caches** it: one JSON file per curve under ``data/curves/<potential>/`` (``$COMPENDIUM_CURVES_CACHE``),
   named by a hash of the two structures (:func:`lib.cathodes.relax.structure_key`), the ion, the potential
   and the settings; it holds every enumerated structure and its energy and is rewritten after every chunk of
   structures, so a killed run resumes where it stopped and a finished curve is read back, never recomputed
   (the potentials' own caches, ``data/relax/<model>``, keep the single energies as well).

**Validation.** :data:`EXPERIMENT_PLATEAUS` lists measured plateau voltages (LiCoO2, LiNiO2, LiMn2O4 with
its two 4 V plateaus, LiFePO4, Li4Ti5O12, NaCrO2 and O3-NaFeO2) with their sources; the same rows are in
``data/experimental_plateaus.csv`` (:func:`write_plateaus`). :func:`plateau_mae` compares a table of predicted
steps with them: each measured plateau against the capacity-weighted mean voltage of the predicted steps over
its x range. :func:`curve_bench` runs the whole chain on MP's pairs of those materials
(``lib.data.electrodes.load_electrode_pairs``), or, where MP has no pair of the material's polymorph, on its
discharged structure among every structure source (:func:`find_structure`: the exact MP id, else the reduced
formula and the space group of :data:`SPACEGROUPS`, the fewest sites first) with the charged end built by
removing the ion (flagged ``charged_built``), and yields benchmark figures.

Limits, on purpose: every ion site of the discharged structure is a candidate site (a framework that holds
the ion itself, as Li4Ti5O12 does on 16d, has those sites emptied too); intermediates keep the discharged
structure's sites (no new sites, no stacking changes such as O3 → O1); a supercell of at most ``max_cells``
primitive cells cannot represent every content (a content that does not fit is reported in ``skipped``).
Static energies of intermediates are energies of the discharged cell with ions removed, so relaxed curves
are the ones to compare with measured plateaus.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import textwrap
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.apps.battery.insertion_battery import InsertionElectrode
from pymatgen.core import Composition, Element, Lattice, Species, Structure
from pymatgen.entries.computed_entries import ComputedStructureEntry
from pymatgen.transformations.standard_transformations import (
    OrderDisorderedStructureTransformation,
    RemoveSpeciesTransformation,
)
from scipy.constants import N_A  # the constant of pymatgen's volumetric capacities

from lib.cathodes.electrodes import ElectrodeError, check_pair, insertion_electrode, ion_entry, ion_valence
from lib.cathodes.relax import DEFAULT as RELAX_DEFAULT
from lib.cathodes.relax import Settings, structure_key
from lib.cathodes.relax import relax as relax_structures
from lib.paths import DATA, atomic_path
from lib.structures import as_structure

with warnings.catch_warnings():  # tqdm.auto warns when a notebook has no ipywidgets; text bars are fine
    warnings.simplefilter("ignore")
    from tqdm.auto import tqdm

CACHE = Path(os.environ.get("COMPENDIUM_CURVES_CACHE", DATA / "curves"))  # one folder per potential below it
DEFAULT = object()  # the default cache folder of a potential: CACHE / potential.name
QUARTERS = (0.25, 0.5, 0.75)
CUTOFF = 4.5  # V: the default upper voltage of the accessible capacity
SAME_EWALD = 0.5  # eV per cell: orderings closer than this are compared with StructureMatcher
PLATEAUS_FILE = DATA / "experimental_plateaus.csv"
PLATEAU_COLUMNS = ("material", "ion", "discharged_formula", "plateau_index", "x_low", "x_high", "voltage",
                   "source", "doi", "note")
STEP_COLUMNS = ("step", "x_charge", "x_discharge", "voltage", "capacity_grav", "capacity_vol",
                "formula_charge", "formula_discharge")


class CurveError(ValueError):
    """A voltage curve that cannot be made: no ion sites, a content that no small supercell holds, ..."""


# ----------------------------------------------------------------------------------------------
# intermediate contents: ion/vacancy orderings ranked by their Ewald energy
# ----------------------------------------------------------------------------------------------


@dataclass
class Ordering:
    """One ion/vacancy ordering: the structure (no oxidation states), its Ewald energy (eV per cell, on the
    charges it was ranked with), its rank among the distinct orderings (0: lowest), the number of primitive
    cells of its supercell and how its charges were assigned (``bv``, ``guess`` or ``ion-only``)."""

    structure: Structure
    ewald: float
    rank: int
    cells: int
    charges: str


def _oxidation_states(structure: Structure, ion: str) -> tuple[Structure, str]:
    """``structure`` decorated with oxidation states: bond valence, else pymatgen's guess, else the ion alone
    (its charge z; every other site neutral). Returns (structure, how)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pymatgen.analysis.bond_valence import BVAnalyzer  # here: only when enumerating

            return BVAnalyzer().get_oxi_state_decorated_structure(structure), "bv"
    except ValueError:
        pass
    try:
        s = structure.copy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s.add_oxidation_state_by_guess()
        oxi = [getattr(sp, "oxi_state", 0) or 0 for sp in s.species]
        ion_oxi = {o for sp, o in zip(s.species, oxi, strict=True) if sp.symbol == ion}
        if ion_oxi == {ion_valence(ion)} and abs(sum(oxi)) < 1e-6:
            return s, "guess"
    except (ValueError, TypeError):
        pass
    z = ion_valence(ion)
    species = [Species(e.symbol, z if e.symbol == ion else 0) for e in structure.species]
    s = Structure(structure.lattice, species, structure.frac_coords)
    return s, "ion-only"


def primitive(structure: Structure) -> Structure:
    """The primitive cell (pymatgen's ``get_primitive_structure``), Niggli-reduced cell; the structure itself
    when that fails."""
    try:
        return structure.get_primitive_structure(tolerance=0.1).get_reduced_structure()
    except Exception:  # noqa: BLE001 - a structure pymatgen cannot reduce is used as it is
        return structure.copy()


def supercell_matrix(lattice: Lattice, cells: int) -> list[int]:
    """The diagonal repetition (na, nb, nc) with na·nb·nc = ``cells`` that makes the shortest supercell axis
    longest, and of those the longest axis shortest (the most compact supercell of that size)."""
    best, score = [cells, 1, 1], (-1.0, 0.0)
    for na in range(1, cells + 1):
        for nb in range(1, cells // na + 1):
            if cells % (na * nb):
                continue
            nc = cells // (na * nb)
            axes = [n * a for n, a in zip((na, nb, nc), lattice.abc, strict=True)]
            s = (round(min(axes), 6), -round(max(axes), 6))
            if s > score:
                best, score = [na, nb, nc], s
    return best


def cell_counts(n_sites: int, n_atoms: int, fraction: float, max_cells: int, max_atoms: int) -> list[int]:
    """The numbers of primitive cells (≤ ``max_cells``, ≤ ``max_atoms`` atoms), fewest first, in which
    ``fraction`` of ``n_sites`` ion sites per cell is a whole number of ions (and some sites stay empty)."""
    out = []
    for m in range(1, max_cells + 1):
        k = n_sites * m * fraction
        if n_atoms * m <= max_atoms and abs(k - round(k)) < 1e-6 and 0 < round(k) < n_sites * m:
            out.append(m)
    return out


def enumerate_orderings(discharged, ion: str, fraction: float, n: int = 3, max_cells: int = 4,
                        max_atoms: int = 64, candidates: int = 60) -> list[Ordering]:
    """The ``n`` lowest-Ewald distinct orderings with ``fraction`` (0 < f < 1) of the ion
    sites of ``discharged`` (a Crystal or Structure) occupied, in the smallest supercell that holds the
    content and has ``n`` distinct orderings (else the one of the allowed supercells with the most); module
    docstring. :class:`CurveError` when the structure holds no ``ion`` or no supercell within the limits
    holds the content."""
    if not 0 < fraction < 1:
        raise CurveError(f"fraction of ion sites {fraction!r} is not between 0 and 1")
    prim = primitive(as_structure(discharged))
    n_sites = sum(sp.symbol == ion for sp in prim.species)
    if not n_sites:
        raise CurveError(f"{prim.composition.reduced_formula} holds no {ion}")
    counts = cell_counts(n_sites, len(prim), fraction, max_cells, max_atoms)
    if not counts:
        raise CurveError(f"{fraction:g} of the {n_sites} {ion} site(s) of {prim.composition.reduced_formula}"
                         f" ({len(prim)} atoms) fits no supercell of ≤ {max_cells} cells and ≤ {max_atoms}"
                         " atoms")
    decorated, how = _oxidation_states(prim, ion)
    best: list[Ordering] = []
    for m in counts:
        found = _orderings(decorated, how, ion, fraction, m, n, candidates)
        if len(found) > len(best):
            best = found
        if len(best) >= n:
            break
    return best


def _orderings(decorated: Structure, how: str, ion: str, fraction: float, cells: int, n: int,
               candidates: int) -> list[Ordering]:
    """The ``n`` lowest-Ewald distinct orderings in a supercell of ``cells`` primitive cells."""
    s = decorated.copy()
    s.make_supercell(supercell_matrix(s.lattice, cells))
    z = ion_valence(ion)
    sites = [i for i, sp in enumerate(s.species) if sp.symbol == ion]
    k = round(len(sites) * fraction)
    # the charge of the removed ions goes to the redox-active cations, as a fractional oxidation state
    removed = z * (len(sites) - k) if how != "ion-only" else 0.0
    cations = [i for i, sp in enumerate(s.species)
               if sp.symbol != ion and (getattr(sp, "oxi_state", 0) or 0) > 0]
    redox = [i for i in cations if Element(s[i].specie.symbol).is_transition_metal] or cations
    if removed and not redox:
        raise CurveError(f"no cation of {s.composition.reduced_formula} can take the charge of the removed "
                         f"{ion}")
    for i in redox if removed else []:
        sp = s[i].specie
        s.replace(i, Species(sp.symbol, sp.oxi_state + removed / len(redox)))
    for i in sites:
        s.replace(i, {Species(ion, z): k / len(sites)})
    algo = OrderDisorderedStructureTransformation.ALGO_FAST  # its only exhaustive one (ALGO_COMPLETE raises)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # charged-cell notes of EwaldSummation (the ion-only charges)
        ranked = OrderDisorderedStructureTransformation(algo=algo).apply_transformation(
            s, return_ranked_list=min(candidates, math.comb(len(sites), k)))
    from pymatgen.analysis.structure_matcher import StructureMatcher  # here: only when enumerating

    matcher = StructureMatcher(primitive_cell=False, attempt_supercell=False)
    out: list[Ordering] = []
    for d in ranked:
        e = float(d["energy"])
        st = d["structure"].copy()
        st.remove_oxidation_states()
        # an ordering equivalent by symmetry to one already kept has the same Ewald energy (to the precision
        # of a cell that is not exactly symmetric): the same structure to pymatgen's StructureMatcher
        if any(abs(e - o.ewald) < SAME_EWALD and matcher.fit(st, o.structure) for o in out):
            continue
        out.append(Ordering(st, e, len(out), cells, how))
        if len(out) == n:
            break
    return out


# ----------------------------------------------------------------------------------------------
# the curve
# ----------------------------------------------------------------------------------------------


@dataclass
class Curve:
    """A voltage curve (module docstring). ``steps``: one row per voltage step (:data:`STEP_COLUMNS`; x in
    ions per framework formula unit ``framework``, voltage in V, capacities in mAh/g and mAh/cm³ per
    discharged mass and volume of the whole curve); ``states``: every structure computed (its content, Ewald
    rank, status, energy per atom and per framework formula unit, energy above the hull in eV per framework
    formula unit, whether it is a vertex of the curve); ``error``: why there is no curve (then ``steps`` is
    empty)."""

    ion: str
    potential: str
    framework: str
    steps: pd.DataFrame
    states: pd.DataFrame
    average_voltage: float = math.nan
    capacity_grav: float = math.nan
    accessible_capacity: float = math.nan
    cutoff: float = CUTOFF
    relaxed: bool = True
    skipped: list[str] = field(default_factory=list)
    key: str = ""
    cache_file: str = ""
    error: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.error and len(self.steps) > 0

    def table(self, material: str | None = None) -> pd.DataFrame:
        """The steps as a tidy table with the curve's labels (material, ion, potential, framework, average
        voltage, capacities, relaxed) on every row: many curves concatenate into one table
        (:func:`plateau_mae`'s input)."""
        t = self.steps.copy()
        labels = {"material": material or self.framework, "ion": self.ion, "potential": self.potential,
                  "framework": self.framework, "relaxed": self.relaxed,
                  "average_voltage": self.average_voltage, "capacity_grav_total": self.capacity_grav,
                  "accessible_capacity": self.accessible_capacity, "cutoff": self.cutoff, "error": self.error}
        for i, (k, v) in enumerate(labels.items()):
            t.insert(i, k, [v] * len(t))
        return t

    def summary(self) -> dict:
        return {"ion": self.ion, "potential": self.potential, "framework": self.framework,
                "steps": len(self.steps), "average_voltage": self.average_voltage,
                "capacity_grav": self.capacity_grav, "accessible_capacity": self.accessible_capacity,
                "cutoff": self.cutoff, "relaxed": self.relaxed, "skipped": list(self.skipped),
                "error": self.error, "cache_file": self.cache_file}


def _crystal_json(s: Structure) -> dict:
    return {"lattice": np.asarray(s.lattice.matrix).tolist(), "frac": np.asarray(s.frac_coords).tolist(),
            "numbers": [int(z) for z in s.atomic_numbers]}


def _structure_of(d: dict) -> Structure:
    return Structure(Lattice(d["lattice"]), d["numbers"], d["frac"])


def ion_content(structure, ion: str) -> tuple[float, float, str]:
    """(x, framework formula units, reduced framework formula) of a structure: ions per formula unit of the
    framework (the structure without the ion)."""
    comp = as_structure(structure).composition
    el = Element(ion)
    fw = Composition({e: a for e, a in comp.items() if e != el})
    red, factor = fw.get_reduced_composition_and_factor()
    return float(comp[el]) / factor, float(factor), red.reduced_formula


def curve_key(charged, discharged, ion: str, potential_name: str, settings: dict) -> str:
    """The cache key of a curve: both structures (:func:`lib.cathodes.relax.structure_key`), the ion, the
    potential and the settings that change the result."""
    payload = {"charged": structure_key(as_structure(charged), potential_name, "curve-end"),
               "discharged": structure_key(as_structure(discharged), potential_name, "curve-end"),
               "ion": ion, "potential": potential_name, "settings": settings}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def _items(charged: Structure, discharged: Structure, ion: str, fractions: Sequence[float], n_orderings: int,
           max_cells: int, max_atoms: int) -> tuple[list[dict], list[str]]:
    """The structures of a curve (without energies): the two ends and the orderings of every content."""
    xc, _, _ = ion_content(charged, ion)
    xd, _, _ = ion_content(discharged, ion)
    items = [{"id": role, "role": role, "x": x, "fraction": None, "ewald": None, "rank": None, "cells": None,
              "charges": None, "structure": _crystal_json(s)}
             for role, x, s in (("charged", xc, charged), ("discharged", xd, discharged))]
    skipped = []
    for f in fractions:
        x = xc + f * (xd - xc)
        try:
            orders = enumerate_orderings(discharged, ion, x / xd, n=n_orderings, max_cells=max_cells,
                                         max_atoms=max_atoms)
        except CurveError as exc:
            skipped.append(f"x = {x:.4g}: {exc}")
            continue
        for o in orders:
            xo = ion_content(o.structure, ion)[0]
            items.append({"id": f"x{xo:.4f}_o{o.rank}", "role": "ordering", "x": xo, "fraction": f,
                          "ewald": o.ewald, "rank": o.rank, "cells": o.cells, "charges": o.charges,
                          "structure": _crystal_json(o.structure)})
    return items, skipped


def _compute(potential, items: list[dict], relax: bool, relax_settings: Settings, chunk: int, save,
             progress: bool, relax_cache=RELAX_DEFAULT) -> None:
    """Energies of the items that have none yet, ``chunk`` at a time, ``save()`` after each chunk."""
    todo = [it for it in items if it.get("status") is None]
    with tqdm(total=len(items), initial=len(items) - len(todo), desc=f"curve ({potential.name})",
              unit="structure", disable=not progress) as bar:
        for j in range(0, len(todo), chunk):
            part = todo[j : j + chunk]
            ss = [_structure_of(it["structure"]) for it in part]
            if relax:
                rs = relax_structures(potential, ss, ids=[it["id"] for it in part], settings=relax_settings,
                                      cache=relax_cache, progress=False)
                for it, r in zip(part, rs, strict=True):
                    final = _crystal_json(as_structure(r.structure)) if r.structure is not None else None
                    it.update(status=r.status, reason=r.reason, energy_per_atom=_finite(r.energy_per_atom),
                              final=final)
            else:
                es = np.asarray(potential.energies(ss)[0], float)
                for it, e in zip(part, es, strict=True):
                    ok = bool(np.isfinite(e))
                    it.update(status="static" if ok else "failed", reason="" if ok else "non-finite energy",
                              energy_per_atom=float(e) if ok else None, final=None)
            bar.update(len(part))
            save()


def _finite(x) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def _usable(it: dict) -> bool:
    return it.get("status") in ("converged", "static") and it.get("energy_per_atom") is not None


def build_curve(items: list[dict], ion: str, ion_energy: float, potential: str = "", cutoff: float = CUTOFF,
                relaxed: bool = True) -> Curve:
    """The curve of computed items (each a dict with ``id``, ``x``, ``structure`` or ``final``, ``status``,
    ``energy_per_atom``): the lowest energy per framework formula unit at each content, pymatgen's
    ``InsertionElectrode.from_entries`` on those with the ion's metal at ``ion_energy`` eV/atom, its steps."""
    rows, entries, end_entries = [], {}, {}
    framework = ""
    for it in items:
        s = _structure_of(it.get("final") or it["structure"])
        x, fu, framework_it = ion_content(s, ion)
        framework = framework or framework_it
        e = it.get("energy_per_atom")
        e_fu = e * len(s) / fu if _usable(it) else math.nan
        rows.append({"id": it["id"], "role": it["role"], "x": x, "fraction": it.get("fraction"),
                     "ewald_rank": it.get("rank"), "cells": it.get("cells"), "atoms": len(s),
                     "status": it.get("status"), "reason": it.get("reason", ""),
                     "energy_per_atom": e if _usable(it) else math.nan, "energy_per_fu": e_fu})
        if _usable(it):
            key = round(x, 6)
            entry = ComputedStructureEntry(s, e * len(s), entry_id=it["id"])
            if it["role"] in ("charged", "discharged"):
                end_entries[it["role"]] = entry
            if key not in entries or e_fu < entries[key][1]:
                entries[key] = (entry, e_fu, x)
    states = pd.DataFrame(rows)
    empty = pd.DataFrame(columns=list(STEP_COLUMNS))
    curve = Curve(ion=ion, potential=potential, framework=framework, steps=empty, states=states,
                  cutoff=cutoff, relaxed=relaxed)
    ends = {it["role"] for it in items if _usable(it)}
    if not {"charged", "discharged"} <= ends:
        missing = sorted({"charged", "discharged"} - ends)
        why = "; ".join(f"{it['id']}: {it.get('status') or 'not computed'}"
                        + (f" ({it['reason']})" if it.get("reason") else "")
                        for it in items if it["role"] in missing)
        curve.error = f"no energy for the {' and '.join(missing)} state ({why})"
        return curve
    chosen = [v[0] for _, v in sorted(entries.items())]
    try:
        el = InsertionElectrode.from_entries(chosen, ion_entry(ion, ion_energy))
        if not el.voltage_pairs:
            raise IndexError
    except (IndexError, ValueError):  # the discharged end dropped: pymatgen's bare pair of the two ends
        el, _ = insertion_electrode(end_entries["charged"], end_entries["discharged"], ion, ion_energy,
                                    checked=True)
    mass = el.normalization_mass
    vol = el.normalization_volume
    curve.steps = pd.DataFrame([
        {"step": i, "x_charge": round(float(vp.x_charge), 10),
         "x_discharge": round(float(vp.x_discharge), 10), "voltage": float(vp.voltage),
         "capacity_grav": float(vp.mAh / mass), "capacity_vol": float(vp.mAh / vol * 1e24 / N_A),
         "formula_charge": vp.entry_charge.composition.reduced_formula,
         "formula_discharge": vp.entry_discharge.composition.reduced_formula}
        for i, vp in enumerate(el.voltage_pairs)], columns=list(STEP_COLUMNS))
    curve.average_voltage = float(el.get_average_voltage())
    curve.capacity_grav = float(el.get_capacity_grav())
    below = [vp for vp in el.voltage_pairs if vp.voltage <= cutoff]
    curve.accessible_capacity = float(el.get_capacity_grav(max_voltage=cutoff)) if below else 0.0
    # the hull in x: energy per framework formula unit above the line through the curve's vertices
    stable_ids = {e.entry_id for e in el.stable_entries}
    hx = np.array([entries[k][2] for k in sorted(entries) if entries[k][0].entry_id in stable_ids])
    he = np.array([entries[k][1] for k in sorted(entries) if entries[k][0].entry_id in stable_ids])
    states["on_curve"] = states["id"].isin(stable_ids)
    states["e_above_hull_per_fu"] = states["energy_per_fu"] - np.interp(states["x"], hx, he) \
        if len(hx) >= 2 else math.nan
    curve.states = states
    return curve


def voltage_curve(potential, discharged, ion: str, charged=None, *, fractions: Sequence[float] = QUARTERS,
                  relax: bool = True, n_orderings: int = 3, max_cells: int = 4, max_atoms: int = 64,
                  cutoff: float = CUTOFF, relax_settings: Settings | None = None, cache=DEFAULT,
                  relax_cache=RELAX_DEFAULT, chunk: int = 8, progress: bool = True) -> Curve:
    """The voltage curve of a discharged structure (Crystal or Structure) and ``ion`` with ``potential`` (an
    energy model with ``name``, ``energies`` and ``ion_energy``, and ``efs`` / ``can_relax`` to relax: every
    ``lib.cathodes.potentials`` potential).

    ``charged``: the charged state (default: ``discharged`` without its ions, relaxed like the rest when
    ``relax``). ``fractions``: the intermediate contents as fractions of the way from charged to discharged
    (``()``: the two ends only, i.e. the average voltage). ``n_orderings``: orderings computed per content;
    ``max_cells`` / ``max_atoms``: the largest supercell. ``cache``: a folder, None, or the default
    ``data/curves/<potential.name>`` (module docstring); ``relax_cache``: the relaxations' own
    (:func:`lib.cathodes.relax.relax`'s ``cache``, default ``data/relax/<potential.name>``). Bad input (an
    unknown ion, frameworks that differ, a discharged state without the ion) is an ``ElectrodeError``; a curve
    without energies for its ends comes back with ``error`` set. A structure that failed is kept as failed in
    the cache (delete the curve's file to try again).
    """
    t0 = time.perf_counter()
    d = as_structure(discharged)
    c = as_structure(charged) if charged is not None else \
        RemoveSpeciesTransformation([ion]).apply_transformation(d)
    check_pair(c, d, ion)
    relax_settings = relax_settings or Settings()
    settings = {"fractions": [round(float(f), 6) for f in fractions], "relax": bool(relax),
                "relax_settings": relax_settings.key() if relax else None, "n_orderings": int(n_orderings),
                "max_cells": int(max_cells), "max_atoms": int(max_atoms), "version": 1}
    key = curve_key(c, d, ion, potential.name, settings)
    folder = (CACHE / potential.name) if cache is DEFAULT else (Path(cache) if cache is not None else None)
    path = folder / f"{key}.json" if folder is not None else None
    record = _load(path)
    if record is None:
        items, skipped = _items(c, d, ion, fractions, n_orderings, max_cells, max_atoms)
        record = {"key": key, "ion": ion, "potential": potential.name, "settings": settings, "items": items,
                  "skipped": skipped, "complete": False}

    def save() -> None:
        if path is not None:
            with atomic_path(path) as tmp:
                tmp.write_text(json.dumps(record))

    if not record.get("complete"):
        save()  # the enumeration itself is kept: a rerun does not enumerate again
        _compute(potential, record["items"], relax, relax_settings, chunk, save, progress, relax_cache)
        record["ion_energy"] = float(potential.ion_energy(ion))
        record["complete"] = True
        save()
    curve = build_curve(record["items"], ion, record["ion_energy"], potential=potential.name, cutoff=cutoff,
                        relaxed=relax)
    curve.skipped, curve.key = list(record.get("skipped", [])), key
    curve.cache_file = str(path) if path is not None else ""
    curve.seconds = time.perf_counter() - t0
    return curve


def _load(path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        d = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):  # none yet, or a damaged file: made again
        return None
    return d if isinstance(d, dict) and isinstance(d.get("items"), list) else None


# ----------------------------------------------------------------------------------------------
# the figure
# ----------------------------------------------------------------------------------------------


def plot_curve(curve: Curve, path: str | Path | None = None, ax=None, plateaus: pd.DataFrame | None = None,
               title: str | None = None, x_scale: float = 1.0):
    """The curve as steps of voltage against ion content (x per framework formula unit, times ``x_scale``),
    the average voltage dashed, the cutoff dotted, measured ``plateaus`` (rows of :data:`EXPERIMENT_PLATEAUS`,
    x in their own formula unit) in grey; a curve without steps says why in words on the axes. Saved as a PNG
    to ``path`` when given (a bare file name goes under figures/). Returns the figure."""
    import matplotlib.pyplot as plt  # here: matplotlib only when drawing

    from lib.plots.base import PALETTE, corner_text, formula_label, save, use_style

    use_style()
    fig, ax = (plt.subplots(figsize=(5, 3.4)) if ax is None else (ax.figure, ax))
    name = formula_label(curve.framework) if curve.framework else "?"
    mode = "relaxed" if curve.relaxed else "static"
    ax.set_title(title or f"{curve.ion}$_x${name}: {curve.potential} ({mode})")
    ax.set_xlabel(f"x ({curve.ion} per {name}{f' × {x_scale:g}' if x_scale != 1 else ''})")
    ax.set_ylabel(f"voltage (V vs {curve.ion}/{curve.ion}$^+$)")
    if plateaus is not None and len(plateaus):
        for k, (_, p) in enumerate(plateaus.iterrows()):
            ax.hlines(p["voltage"], p["x_low"], p["x_high"], color="0.55", lw=5, alpha=0.5,
                      label="measured" if k == 0 else None)
    if not curve.ok:
        why = curve.error or "no voltage step"
        ax.text(0.5, 0.5, "no voltage curve:\n" + textwrap.fill(why, 48), transform=ax.transAxes, ha="center",
                va="center", color=PALETTE[1])
        ax.grid(False)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 5)
    else:
        st = curve.steps.sort_values("x_charge")
        xs, vs = [], []
        for _, r in st.iterrows():
            xs += [r["x_charge"] * x_scale, r["x_discharge"] * x_scale]
            vs += [r["voltage"], r["voltage"]]
        ax.plot(xs, vs, color=PALETTE[0], lw=2, label="predicted")
        ax.axhline(curve.average_voltage, color=PALETTE[0], ls="--", lw=1,
                   label=f"average {curve.average_voltage:.2f} V")
        shown = vs + ([] if plateaus is None else list(plateaus["voltage"]))
        lo, hi = min(shown) - 0.3, max(shown) + 0.45
        if curve.cutoff < hi + 0.5:  # the cutoff only where it does not squash the steps
            ax.axhline(curve.cutoff, color=PALETTE[1], ls=":", lw=1, label=f"cutoff {curve.cutoff:g} V")
            hi = max(hi, curve.cutoff + 0.15)
        ax.set_ylim(lo, hi)
        corner_text(ax, f"{curve.capacity_grav:.0f} mAh/g; {curve.accessible_capacity:.0f} mAh/g below "
                        f"{curve.cutoff:g} V", loc="upper right")
        ax.legend(loc="lower left", fontsize=8, ncols=2)
    if path is not None:
        save(fig, path)
    return fig


# ----------------------------------------------------------------------------------------------
# measured plateaus
# ----------------------------------------------------------------------------------------------

_REIMERS = "Reimers J.N., Dahn J.R., J. Electrochem. Soc. 139(8), 2091-2097 (1992)"
_OHZUKU_NI = "Ohzuku T., Ueda A., Nagayama M., J. Electrochem. Soc. 140(7), 1862-1870 (1993)"
_OHZUKU_MN = "Ohzuku T., Kitagawa M., Hirai T., J. Electrochem. Soc. 137(3), 769-775 (1990)"
_PADHI = "Padhi A.K., Nanjundaswamy K.S., Goodenough J.B., J. Electrochem. Soc. 144(4), 1188-1194 (1997)"
_LTO = "Ohzuku T., Ueda A., Yamamoto N., J. Electrochem. Soc. 142(5), 1431-1435 (1995)"
_KOMABA = ("Komaba S., Takei C., Nakayama T., Ogata A., Yabuuchi N., Electrochem. Commun. 12(3), 355-358 "
           "(2010)")
_NAFEO2 = "Electrochemistry (Tokyo) 80(10), 716-719 (2012), O3-NaFeO2 abstract on J-STAGE (authors not shown)"

#: measured plateaus (V vs the ion's metal; x in ions per ``discharged_formula`` minus the ion, i.e. per its
#: framework formula). ``note`` says what was checked: "verified" notes quote a stored page of the source
#: or of a secondary source; "unverified" values are the commonly cited ones, not read in a stored page.
EXPERIMENT_PLATEAUS: tuple[dict, ...] = (
    {"material": "LiCoO2", "ion": "Li", "discharged_formula": "LiCoO2", "plateau_index": 0, "x_low": 0.5,
     "x_high": 1.0, "voltage": 3.9, "source": _REIMERS, "doi": "10.1149/1.2221184",
     "note": "unverified value: the ~3.9 V mean of Li_xCoO2 between x = 0.5 and 1 (two-phase plateau near "
             "3.9 V at 0.75 < x < 0.93); the citation was found in a stored reference list, the DOI is not "
             "shown there and the voltage was not read in a stored page"},
    {"material": "LiNiO2", "ion": "Li", "discharged_formula": "LiNiO2", "plateau_index": 0, "x_low": 0.45,
     "x_high": 1.0, "voltage": 3.8, "source": _OHZUKU_NI, "doi": "10.1149/1.2220730",
     "note": "citation and DOI verified (stored abstract record): >150 mAh/g (x from ~0.45 to 1) between "
             "2.5 and 4.2 V, '4 volt' cells; the 3.8 V mean of that sloping curve is unverified (not in the "
             "abstract)"},
    {"material": "LiMn2O4", "ion": "Li", "discharged_formula": "LiMn2O4", "plateau_index": 0, "x_low": 0.0,
     "x_high": 0.5, "voltage": 4.1, "source": _OHZUKU_MN, "doi": "10.1149/1.2086552",
     "note": "unverified: upper of the two 4 V plateaus of Li_xMn2O4 (about 4.1-4.15 V, 0 < x < 0.5); "
             "citation and DOI from memory, not found in a stored page"},
    {"material": "LiMn2O4", "ion": "Li", "discharged_formula": "LiMn2O4", "plateau_index": 1, "x_low": 0.5,
     "x_high": 1.0, "voltage": 4.0, "source": _OHZUKU_MN, "doi": "10.1149/1.2086552",
     "note": "unverified: lower of the two 4 V plateaus (about 3.95-4.05 V, 0.5 < x < 1); a stored page "
             "(Infinite Lexicon) gives only 'about 4.0 V' for LiMn2O4"},
    {"material": "LiFePO4", "ion": "Li", "discharged_formula": "LiFePO4", "plateau_index": 0, "x_low": 0.0,
     "x_high": 1.0, "voltage": 3.43, "source": _PADHI, "doi": "10.1149/1.1837571",
     "note": "one flat two-phase plateau; a stored secondary page quotes Padhi et al.: 'a flat potential at "
             "3.5 V vs. Li' (verified); the 3.43 V equilibrium value is the commonly cited one (unverified "
             "here); DOI from memory"},
    {"material": "Li4Ti5O12", "ion": "Li", "discharged_formula": "Li7Ti5O12", "plateau_index": 0,
     "x_low": 4.0, "x_high": 7.0, "voltage": 1.55, "source": _LTO, "doi": "10.1149/1.2048592",
     "note": "anode; flat two-phase plateau Li4Ti5O12/Li7Ti5O12; 1.55 V verified in a stored abstract of "
             "Julien & Mauger, Micromachines 15, 310 (2024), doi:10.3390/mi15030310; the original paper's "
             "DOI is from memory"},
    {"material": "NaCrO2", "ion": "Na", "discharged_formula": "NaCrO2", "plateau_index": 0, "x_low": 0.5,
     "x_high": 1.0, "voltage": 3.0, "source": _KOMABA, "doi": "10.1016/j.elecom.2009.12.033",
     "note": "O3 layered; reversible ~120 mAh/g (Na_xCrO2, 0.5 < x < 1) verified in the stored abstract; the "
             "~3.0 V mean (cycled between 2 and 3.6 V) is unverified; DOI from memory"},
    {"material": "NaFeO2", "ion": "Na", "discharged_formula": "NaFeO2", "plateau_index": 0, "x_low": 0.55,
     "x_high": 1.0, "voltage": 3.3, "source": _NAFEO2, "doi": "",
     "note": "O3 layered; verified in the stored abstract: 'nearly flat voltage profile at approximately "
             "3.3 V vs. Na metal', reversible for x = 0-0.45 in Na(1-x)FeO2 (also in "
             "data/experimental_voltages.csv)"},
)


def plateaus_table() -> pd.DataFrame:
    """:data:`EXPERIMENT_PLATEAUS` as a DataFrame (:data:`PLATEAU_COLUMNS`)."""
    return pd.DataFrame(list(EXPERIMENT_PLATEAUS), columns=list(PLATEAU_COLUMNS))


def write_plateaus(path: str | Path = PLATEAUS_FILE) -> Path:
    """Write :data:`EXPERIMENT_PLATEAUS` to ``data/experimental_plateaus.csv``; returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        plateaus_table().to_csv(tmp, index=False, quoting=csv.QUOTE_MINIMAL)
    return path


def load_plateaus(path: str | Path | None = None) -> pd.DataFrame:
    """The measured plateaus: from ``path`` (default ``data/experimental_plateaus.csv`` when it exists), else
    :data:`EXPERIMENT_PLATEAUS`."""
    p = Path(path) if path is not None else PLATEAUS_FILE
    if path is not None or p.is_file():
        t = pd.read_csv(p, keep_default_na=False)
        missing = set(PLATEAU_COLUMNS) - set(t.columns)
        if missing:
            raise ValueError(f"{p}: missing columns {sorted(missing)}")
        return t
    return plateaus_table()


def _fu_scale(discharged_formula: str, ion: str, framework: str) -> float:
    """Framework formula units of ``framework`` in one formula unit of ``discharged_formula`` minus the ion:
    the factor from a curve's x to the plateau's x (LiMn2O4: Mn2O4 is 2 MnO2, so x_plateau = 2 x_curve)."""
    comp = Composition(discharged_formula)
    el = Element(ion)
    fw = Composition({e: a for e, a in comp.items() if e != el})
    return float(fw.num_atoms / Composition(framework).num_atoms)


def plateau_voltage(steps: pd.DataFrame, x_low: float, x_high: float, min_overlap: float = 0.5) -> float:
    """The capacity-weighted mean voltage of ``steps`` (x_charge, x_discharge, voltage; x on the plateau's
    scale) over [x_low, x_high]; NaN when the steps cover less than ``min_overlap`` of that range."""
    width = x_high - x_low
    if width <= 0:
        return math.nan
    lo = np.maximum(steps["x_charge"].to_numpy(float), x_low)
    hi = np.minimum(steps["x_discharge"].to_numpy(float), x_high)
    w = np.clip(hi - lo, 0, None)
    if w.sum() < min_overlap * width - 1e-9:
        return math.nan
    return float((w * steps["voltage"].to_numpy(float)).sum() / w.sum())


def plateau_mae(curves_table: pd.DataFrame, plateaus: pd.DataFrame | None = None,
                min_overlap: float = 0.5) -> tuple[float, pd.DataFrame]:
    """Predicted against measured plateaus: for every plateau (rows like :data:`EXPERIMENT_PLATEAUS`) whose
    ``material`` and ``ion`` have steps in ``curves_table`` (:meth:`Curve.table` rows, concatenated), the
    capacity-weighted mean predicted voltage over the plateau's x range (:func:`plateau_voltage`, x
    converted to the plateau's formula unit). Returns (MAE in V over the plateaus compared, the table of
    comparisons with ``predicted``, ``error`` and ``compared``)."""
    plateaus = load_plateaus() if plateaus is None else plateaus
    rows = []
    for _, p in plateaus.iterrows():
        st = curves_table[(curves_table["material"] == p["material"]) & (curves_table["ion"] == p["ion"])]
        st = st[st["voltage"].notna()] if len(st) else st
        pred, why = math.nan, "no predicted curve"
        if len(st):
            scale = _fu_scale(p["discharged_formula"], p["ion"], st["framework"].iloc[0])
            scaled = st.assign(x_charge=st["x_charge"] * scale, x_discharge=st["x_discharge"] * scale)
            pred = plateau_voltage(scaled, float(p["x_low"]), float(p["x_high"]), min_overlap)
            why = "" if math.isfinite(pred) else "the curve covers too little of the plateau's x range"
        rows.append({**{k: p[k] for k in ("material", "ion", "plateau_index", "x_low", "x_high")},
                     "measured": float(p["voltage"]), "predicted": pred, "error": pred - float(p["voltage"]),
                     "compared": math.isfinite(pred), "why_not": why})
    t = pd.DataFrame(rows)
    done = t[t["compared"]] if len(t) else t
    mae = float(done["error"].abs().mean()) if len(done) else math.nan
    return mae, t


# ----------------------------------------------------------------------------------------------
# finding a reference material's structure among the project's structure sources
# ----------------------------------------------------------------------------------------------

#: ``sources=AUTO``: load :func:`lib.cathodes.stability.structure_sources` when a material needs it
AUTO = "auto"
_FORMULAS: dict[int, tuple[object, np.ndarray]] = {}  # id(sources) -> (the frame's weak reference, formulas)


@dataclass
class Found:
    """The structure a lookup (:func:`find_structure`) chose: ``material_id``, ``source`` (the structure
    source's name), ``structure`` (a pymatgen Structure; None when nothing matched), ``spacegroup``,
    ``n_sites``, ``exact`` (the id asked for) and ``how``: in words, which structure and why, or why none."""

    material_id: str | None
    structure: Structure | None
    source: str = ""
    spacegroup: str = ""
    n_sites: int = 0
    exact: bool = False
    how: str = ""

    @property
    def ok(self) -> bool:
        return self.structure is not None


def _reduced(c) -> str:
    """The reduced formula of a Crystal or Structure (from its atomic numbers when it has them: no
    Structure is built for the 71,210 structures of the sources)."""
    numbers = getattr(c, "numbers", None)
    if numbers is None:
        return as_structure(c).composition.reduced_formula
    z, n = np.unique(np.asarray(numbers), return_counts=True)
    return Composition({Element.from_Z(int(a)): int(b) for a, b in zip(z, n, strict=True)}).reduced_formula


def _formulas(sources: pd.DataFrame) -> np.ndarray:
    """The reduced formula of every row of ``sources`` (computed once per frame: a 71,210-row table takes
    a few seconds)."""
    import weakref

    hit = _FORMULAS.get(id(sources))
    if hit is not None and hit[0]() is sources and len(hit[1]) == len(sources):
        return hit[1]
    f = np.array([_reduced(c) for c in sources["structure"]], dtype=object)
    try:
        _FORMULAS[id(sources)] = (weakref.ref(sources), f)
    except TypeError:  # pragma: no cover - a frame that cannot be weakly referenced: not kept
        pass
    return f


def spacegroup_of(structure, symprec: float = 0.1) -> str:
    """The space-group symbol (spglib through pymatgen, ``symprec`` Å), ``"?"`` when it cannot be found."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        return SpacegroupAnalyzer(as_structure(structure), symprec=symprec).get_space_group_symbol()
    except Exception:  # noqa: BLE001 - a structure spglib cannot analyse: no space group
        return "?"


def _same_spacegroup(a: str, b: str) -> bool:
    return a.replace(" ", "").lower() == b.replace(" ", "").lower()


def _id_order(mid: str) -> tuple[int, int, str]:
    """MP's own ids (``mp-``) before others (``mvc-``, ...), then by number."""
    digits = "".join(ch for ch in str(mid).split("-")[-1] if ch.isdigit())
    return (0 if str(mid).startswith("mp-") else 1, int(digits) if digits else 10**12, str(mid))


def resolve_sources(sources):
    """``sources`` as a DataFrame: a frame as is; a callable's result (the bench passes a memoised loader);
    :data:`AUTO`: :func:`lib.cathodes.stability.structure_sources` (about 30 s); None: None."""
    if sources is None or isinstance(sources, pd.DataFrame):
        return sources
    if callable(sources):
        return sources()
    if sources == AUTO:
        from lib.cathodes.stability import structure_sources  # here: 71,210 structures, only when needed

        return structure_sources()
    raise ValueError(f"sources: a DataFrame, a callable, {AUTO!r} or None, not {sources!r}")


def sources_loader(sources):
    """``sources`` as something :func:`resolve_sources` reads at most once: :data:`AUTO` becomes a memoised
    loader of :func:`lib.cathodes.stability.structure_sources` (loaded on the first material that needs it),
    a loader (a callable) a memoised one; a table or None is returned as is."""
    import functools

    if isinstance(sources, str) and sources == AUTO:
        def load() -> pd.DataFrame:
            from lib.cathodes.stability import structure_sources

            return structure_sources()

        return functools.cache(load)
    if callable(sources) and not isinstance(sources, pd.DataFrame):
        return sources if hasattr(sources, "cache_info") else functools.cache(sources)
    return sources


def find_structure(sources: pd.DataFrame, formula: str, spacegroup: str | None = None,
                   material_id: str | None = None, symprec: float = 0.1) -> Found:
    """A reference material's structure among ``sources`` (columns ``material_id``, ``structure``, ``source``:
    :func:`lib.cathodes.stability.structure_sources`; Crystals or Structures).

    The rule: **the exact ``material_id``** first, if ``sources`` hold it with the reduced ``formula`` (and
    the ``spacegroup``, when one is given: an id written from memory that is another polymorph does not stand
    in for the one described); else **the same polymorph under another id**: the rows of that reduced formula
    whose space group (spglib, ``symprec`` 0.1 Å) is ``spacegroup`` (every row of the formula when
    ``spacegroup`` is None), the fewest sites first, then MP's ids (``mp-``) before others, then the lowest
    number. ``Found.how`` says which id and source were used and why, or why nothing matched (with the
    polymorphs of the formula that are there)."""
    red = Composition(formula).reduced_formula
    n_all = len(sources)
    forms = _formulas(sources)
    sub = sources[forms == red]
    want = f" {spacegroup}" if spacegroup else ""
    mid = str(material_id).strip() if material_id else ""
    why_not_id = ""
    if mid:
        hit = sources[sources["material_id"] == mid]
        if not len(hit):
            why_not_id = f"{mid} is not among the {n_all:,} structures"
        else:
            r = hit.iloc[0]
            s, sg = as_structure(r["structure"]), spacegroup_of(r["structure"], symprec)
            if s.composition.reduced_formula != red:
                why_not_id = f"{mid} is {s.composition.reduced_formula}, not {red}"
            elif spacegroup and not _same_spacegroup(sg, spacegroup):
                why_not_id = f"{mid} is {red} {sg}, not {spacegroup}"
            else:
                return Found(mid, s, str(r["source"]), sg, len(s), True,
                             f"{mid} ({r['source']}, {red} {sg}, {len(s)} sites): the reference's own id")
    if not len(sub):
        return Found(None, None, how=f"no {red} among the {n_all:,} structures"
                     + (f" ({why_not_id})" if why_not_id else ""))
    cand = sub.assign(_sg=[spacegroup_of(c, symprec) for c in sub["structure"]],
                      _n=[len(c) for c in sub["structure"]])
    if spacegroup:
        cand = cand[cand["_sg"].map(lambda g: _same_spacegroup(g, spacegroup))]
    if not len(cand):
        there = sub.assign(_sg=[spacegroup_of(c, symprec) for c in sub["structure"]])
        poly = ", ".join(f"{m} {g}" for m, g in sorted(zip(there["material_id"], there["_sg"], strict=True),
                                                       key=lambda t: _id_order(t[0]))[:6])
        more = f" and {len(there) - 6} more" if len(there) > 6 else ""
        return Found(None, None, how=f"no {red}{want} among the {n_all:,} structures"
                     + (f" ({why_not_id})" if why_not_id else "") + f"; {red} there: {poly}{more}")
    order = sorted(range(len(cand)),
                   key=lambda i: (int(cand["_n"].iloc[i]), _id_order(cand["material_id"].iloc[i])))
    r = cand.iloc[order[0]]
    s = as_structure(r["structure"])
    rule = "the fewest sites, then the lowest MP id" if len(cand) > 1 else "the only one"
    same = ("same polymorph, another MP id" if mid else "by formula and space group") if spacegroup else \
        ("another MP id, any polymorph" if mid else "by formula alone, any polymorph")
    how = (f"{r['material_id']} ({r['source']}, {red} {r['_sg']}, {len(s)} sites): {same}"
           + (f" ({why_not_id})" if why_not_id else "") + f"; {len(cand)} {red}{want} there, {rule}")
    return Found(str(r["material_id"]), s, str(r["source"]), str(r["_sg"]), len(s), False, how)


# ----------------------------------------------------------------------------------------------
# the benchmark hook
# ----------------------------------------------------------------------------------------------

#: the space group of the discharged structure that is the measured material, where MP has polymorphs
SPACEGROUPS = {"LiCoO2": "R-3m", "LiNiO2": "R-3m", "LiMn2O4": "Fd-3m", "LiFePO4": "Pnma",
               "Li4Ti5O12": "Fd-3m", "NaCrO2": "R-3m", "NaFeO2": "R-3m"}


def find_pair(pairs: pd.DataFrame, material: str, ion: str,
              discharged_formula: str) -> tuple[pd.Series | None, str]:
    """MP's pair of a measured material: the pairs of ``ion`` with that discharged reduced formula, those
    whose discharged structure has the material's space group (:data:`SPACEGROUPS`) first, then the smallest
    cells. Returns (row or None, a note: how it was chosen or why there is none)."""
    red = Composition(discharged_formula).reduced_formula
    sub = pairs[(pairs["ion"] == ion)
                & (pairs["formula_discharged"].map(lambda f: Composition(f).reduced_formula) == red)]
    if not len(sub):
        return None, f"MP has no {ion} pair with discharged {red}"
    want = SPACEGROUPS.get(material)
    cand = sub.assign(_sg=sub["discharged"].map(spacegroup_of),
                      _n=sub["discharged"].map(len) + sub["charged"].map(len))
    cand = cand.assign(_match=cand["_sg"] == want).sort_values(["_match", "_n"], ascending=[False, True])
    row = cand.iloc[0]
    miss = "" if row["_match"] else f", not {want}: none of MP's pairs has it"
    how = f"{row['battery_id']} ({row['_sg']}{miss})"
    return row, how


def _failed(name: str, why: str, **extra) -> dict:
    return {"name": f"curve_failed_{name}", "value": 1, "unit": "", "n": 0, "why": why, **extra}


def bench_structures(pairs: pd.DataFrame, material: str, ion: str, discharged_formula: str,
                     sources=None) -> dict:
    """The structures of a measured material's curve: a dict ``discharged``, ``charged``, ``how`` (in
    words: which structure, from where, why), ``charged_built`` and ``mp_avg_voltage`` (MP's, NaN off its
    pairs). MP's pair (:func:`find_pair`) when it has the material's space group (:data:`SPACEGROUPS`);
    else, with ``sources`` (a structure table, a loader or :data:`AUTO`: :func:`resolve_sources`), the
    discharged structure of that formula and space group among them (:func:`find_structure`), whose charged
    end is then the discharged structure without its ions (``charged`` None, ``charged_built`` True:
    :func:`voltage_curve` builds it); else MP's pair of another polymorph, as before, noted. ``discharged``
    None (and ``how`` the reason) when there is none."""
    def out(d, c, how, built, row=None) -> dict:
        v = float(row["avg_voltage"]) if row is not None and "avg_voltage" in row else math.nan
        return {"discharged": d, "charged": c, "how": how, "charged_built": built, "mp_avg_voltage": v}

    row, how = find_pair(pairs, material, ion, discharged_formula) if len(pairs) else \
        (None, f"MP has no {ion} pair with discharged {Composition(discharged_formula).reduced_formula}")
    if row is not None and bool(row["_match"]):
        return out(row["discharged"], row["charged"], how, False, row)
    want = SPACEGROUPS.get(material)
    table = None
    if sources is not None:
        try:
            table = resolve_sources(sources)
        except Exception as exc:  # noqa: BLE001 - a source that cannot be read: the pairs alone, said why
            how = f"{how}; the structure sources could not be read ({exc})"
    if table is not None:
        found = find_structure(table, discharged_formula, want)
        if found.ok:
            why = "no MP pair" if row is None else f"MP's pair {row['battery_id']} is {row['_sg']}"
            note = (f"{found.how}; {why}: the charged end is this structure without its {ion} "
                    f"(built, not MP's)")
            return out(found.structure, None, note, True)
        how = f"{how}; {found.how}"
    if row is None:
        return out(None, None, how, False)
    return out(row["discharged"], row["charged"], how, False, row)


def curve_bench(potential: str = "sevennet", materials: Sequence[str] | None = None, relax: bool = True,
                pairs: pd.DataFrame | None = None, plateaus: pd.DataFrame | None = None,
                figures: str | Path | None = None, sources=AUTO, **kwargs) -> Iterator[dict]:
    """Voltage curves of the measured materials (:data:`EXPERIMENT_PLATEAUS`, or ``materials`` of them) on
    MP's pairs (:func:`find_pair`), else on the discharged structure of the material's formula and space group
    among ``sources`` with its ions removed for the charged end (:func:`bench_structures`; ``sources``: a
    structure table, a loader, :data:`AUTO` to load :func:`lib.cathodes.stability.structure_sources` when a
    material needs it, or None for MP's pairs alone), with ``potential`` (a name of
    ``lib.cathodes.potentials.POTENTIALS`` or an energy model), relaxed or static. Yields benchmark figures as
    dicts (``name``, ``value``, ``unit``, ``n`` and notes, ``pair`` saying which structure was used and
    ``charged_built``): per material ``curve_seconds_<material>``, ``curve_avg_voltage_<material>``,
    ``curve_steps_<material>`` (or ``curve_failed_<material>`` with the reason), then
    ``curve_plateau_mae_vs_exp`` over every plateau compared (and ``curve_plateau_n_vs_exp``). The last dict's
    ``table`` holds the comparison (a DataFrame). ``figures``: a folder for one PNG per material."""
    sources = sources_loader(sources)
    if isinstance(potential, str):
        from lib.cathodes.potentials import get_potential  # here: the networks only when benchmarked

        pot = get_potential(potential)
    else:
        pot = potential
    plateaus = load_plateaus() if plateaus is None else plateaus
    names = list(dict.fromkeys(plateaus["material"])) if materials is None else list(materials)
    if pairs is None:
        from lib.data.electrodes import load_electrode_pairs  # here: the mirror only when benchmarked

        pairs = load_electrode_pairs()
    tables = []
    mode = "relaxed" if relax else "static"
    for name in names:
        p = plateaus[plateaus["material"] == name]
        if not len(p):
            yield _failed(name, "not a measured material")
            continue
        ion, formula = p["ion"].iloc[0], p["discharged_formula"].iloc[0]
        b = bench_structures(pairs, name, ion, formula, sources)
        discharged, charged, how, built = b["discharged"], b["charged"], b["how"], b["charged_built"]
        if discharged is None:
            yield _failed(name, how)
            continue
        t0 = time.perf_counter()
        try:
            curve = voltage_curve(pot, discharged, ion, charged, relax=relax, **kwargs)
        except (ValueError, ElectrodeError) as exc:
            yield _failed(name, str(exc), pair=how, charged_built=built)
            continue
        secs = time.perf_counter() - t0
        extra = {"pair": how, "charged_built": built, "potential": pot.name, "mode": mode}
        yield {"name": f"curve_seconds_{name}", "value": secs, "unit": "s", "n": int(len(curve.states)),
               **extra}
        if figures is not None:
            scale = _fu_scale(formula, ion, curve.framework) if curve.framework else 1.0
            plot_curve(curve, Path(figures) / f"curve_{name}_{pot.name}_{mode}.png", plateaus=p,
                       x_scale=scale)
        if not curve.ok:
            yield _failed(name, curve.error, **extra)
            continue
        mp_v = b["mp_avg_voltage"]
        yield {"name": f"curve_avg_voltage_{name}", "value": curve.average_voltage, "unit": "V",
               "n": int(len(curve.steps)), "mp_avg_voltage": mp_v, **extra}
        yield {"name": f"curve_steps_{name}", "value": int(len(curve.steps)), "unit": "steps", "n": 1,
               **extra}
        tables.append(curve.table(material=name))
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(
        columns=["material", "ion", "framework", *STEP_COLUMNS])
    mae, comparison = plateau_mae(table, plateaus[plateaus["material"].isin(names)])
    n = int(comparison["compared"].sum()) if len(comparison) else 0
    yield {"name": "curve_plateau_n_vs_exp", "value": n, "unit": "plateaus", "n": n, "mode": mode}
    yield {"name": "curve_plateau_mae_vs_exp", "value": mae, "unit": "V", "n": n, "mode": mode,
           "potential": pot.name, "table": comparison}


__all__ = ["CACHE", "CUTOFF", "QUARTERS", "EXPERIMENT_PLATEAUS", "PLATEAU_COLUMNS", "STEP_COLUMNS",
           "SPACEGROUPS", "AUTO", "Found", "bench_structures", "find_structure", "resolve_sources",
           "sources_loader", "spacegroup_of", "Curve", "CurveError", "Ordering", "build_curve", "cell_counts",
           "curve_bench",
           "curve_key", "enumerate_orderings", "find_pair", "ion_content", "load_plateaus", "plateau_mae",
           "plateau_voltage", "plateaus_table", "plot_curve", "primitive", "supercell_matrix",
           "voltage_curve", "write_plateaus"]
