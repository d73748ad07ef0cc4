"""Insertion electrodes from formation energies: voltage, capacity and specific energy, through pymatgen.

**The physics.** An insertion electrode moves between a charged host A and a discharged A·I_Δx, where
I is the working ion (Li, Na, K, Rb, Cs: z = 1; Mg, Ca, Zn: z = 2; Al, Y: z = 3) and Δx the number of
ions taken up per formula unit of the framework (the host without the ion). Its average voltage is

    V = -[E(A·I_Δx) - E(A) - Δx·μ(I)] / (Δx · z · e)

with E the energies per framework formula unit and μ(I) the energy per atom of the ion's metal. With
*formation* energies (E_f per atom × atoms, relative to the elements) the elemental references of the
framework cancel, because both states hold the same framework, and only the ion's remains: the metal's
formation energy is 0 by definition. So predicted formation energies give voltages directly, and
``formation_energy_per_atom`` from the mirror, or from a model, is all this module needs.

Everything electrochemical goes **through pymatgen's battery classes**: each state becomes a
``ComputedStructureEntry`` with energy = E_f × atoms (:func:`formation_entry`), the ion's metal a
``ComputedEntry`` at energy 0 (:func:`ion_entry`), and :func:`insertion_electrode` builds
``pymatgen.apps.battery.insertion_battery.InsertionElectrode`` from the two states and the ion, whose
``get_average_voltage`` (V), ``get_capacity_grav`` (mAh/g, per mass of the discharged state),
``get_capacity_vol`` (mAh/cm³, per volume of the discharged state), ``get_specific_energy`` (Wh/kg)
and ``get_energy_density`` (Wh/L) are used as they are. pymatgen takes the ion's charge as the largest
of ``Element(ion).oxidation_states`` (:func:`ion_valence`; a test checks it against :data:`WORKING_IONS`).

Hand-written, because pymatgen lacks it, and tested against pymatgen: :class:`PairGeometry`, the
coefficients that map the two formation energies per atom to the voltage, for vectorised voltages of
many energy sets and for propagating a predicted energy's standard deviation to the voltage.

Energies are not computed here: this module is the physics from energies and cells to voltages, and the
energy stage (:func:`lib.cathodes.potentials.potential_pair_table`) calls it. Also here: reading MP's
insertion-electrode pairs (:func:`read_pairs`, the mirror's
``mp_insertion_electrodes.csv``), matching them to the mirror's structures (:func:`match_pairs`), and
the voltages of the matched pairs from the mirror's DFT formation energies (:func:`pair_table`).
Bad input is an :class:`ElectrodeError` that names the problem: an unknown ion, a discharged state
without the ion, frameworks that differ, states whose ion content is not larger when discharged.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pymatgen.apps.battery.insertion_battery import InsertionElectrode, InsertionVoltagePair
from pymatgen.core import Composition, Element
from pymatgen.entries.computed_entries import ComputedEntry, ComputedStructureEntry

from lib.data.sources.electrode_pairs import (  # the pairs file is data; re-exported here
    PAIR_COLUMNS,
    PAIRS_FILE,
    WORKING_IONS,
    ElectrodeError,
    read_pairs,
)
from lib.structures import Crystal

with warnings.catch_warnings():  # tqdm.auto warns when a notebook has no ipywidgets; text bars are fine
    warnings.simplefilter("ignore")
    from tqdm.auto import tqdm

FARADAY_MAH_PER_MOL = 96485.33212 / 3.6  # mAh per mole of elementary charges
AVOGADRO = 6.02214076e23


# ----------------------------------------------------------------------------------------------
# ions and entries
# ----------------------------------------------------------------------------------------------


def check_ion(ion: str) -> str:
    """The ion's symbol if it is one of MP's working ions; an :class:`ElectrodeError` otherwise."""
    if not isinstance(ion, str) or ion not in WORKING_IONS:
        raise ElectrodeError(f"unknown working ion {ion!r}; known: {', '.join(WORKING_IONS)}")
    return ion


def ion_valence(ion: str) -> int:
    """The charge z the ion carries, as pymatgen's ``InsertionVoltagePair`` takes it:
    ``abs(max(Element(ion).oxidation_states))`` (Li 1, Mg 2, Al 3, ...)."""
    check_ion(ion)
    return abs(max(Element(ion).oxidation_states))


def _structure(s):
    """A pymatgen Structure from a Crystal or a Structure."""
    return s.to_structure() if isinstance(s, Crystal) else s


def formation_entry(structure, formation_energy_per_atom: float, entry_id: str | None = None):
    """A ``ComputedStructureEntry`` whose energy is E_f (eV/atom) × atoms, i.e. on the formation-energy scale.

    ``structure``: a :class:`lib.structures.Crystal` or a pymatgen ``Structure``.
    """
    ef = float(formation_energy_per_atom)
    if not math.isfinite(ef):
        raise ElectrodeError(f"{entry_id or 'structure'}: formation energy is {formation_energy_per_atom!r}")
    s = _structure(structure)
    return ComputedStructureEntry(s, ef * len(s), entry_id=entry_id, data={"material_id": entry_id})


def ion_entry(ion: str, energy_per_atom: float = 0.0):
    """The working ion's metal as a ``ComputedEntry``: at energy 0 on the formation-energy scale (its formation
    energy by definition), or at ``energy_per_atom`` (eV/atom) on a total-energy scale, from the same model as
    the two states (:mod:`lib.cathodes.potentials`)."""
    label = "E_f = 0" if energy_per_atom == 0.0 else f"{energy_per_atom:.4f} eV/atom"
    return ComputedEntry(Composition(check_ion(ion)), float(energy_per_atom), entry_id=f"{ion} metal ({label})")


# ----------------------------------------------------------------------------------------------
# the pair's geometry (hand-written: pymatgen has no vectorised form and no uncertainty)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairGeometry:
    """What a charged/discharged pair's voltage depends on besides the energies, per framework formula unit.

    n_charged, n_discharged: atoms in the two cells; f_charged, f_discharged: framework formula units in
    them; dx: ions gained per framework formula unit; z: the ion's charge; mass_discharged (g/mol) and
    volume_discharged (Å³) per framework formula unit of the discharged state.

    V = [E_c/f_c - E_d/f_d] / (dx z) with E = E_f × n (eV), i.e. V = a_c·E_f,c - a_d·E_f,d with
    a = n / (f dx z) (V per eV/atom): :meth:`voltage`. Capacity Q = dx z F / M_d (mAh/g), volumetric
    dx z F / (V_d N_A) (mAh/cm³), specific energy Q·V (Wh/kg): the same as pymatgen's (tested).
    """
    ion: str
    z: int
    framework: str
    n_charged: int
    n_discharged: int
    f_charged: float
    f_discharged: float
    x_charged: float
    x_discharged: float
    mass_discharged: float
    volume_discharged: float

    @property
    def dx(self) -> float:
        return self.x_discharged - self.x_charged

    @property
    def coefficients(self) -> tuple[float, float]:
        """(a_c, a_d): dV/dE_f,charged and -dV/dE_f,discharged, in V per eV/atom."""
        k = self.dx * self.z
        return self.n_charged / (self.f_charged * k), self.n_discharged / (self.f_discharged * k)

    def voltage(self, ef_charged, ef_discharged, sigma_charged=None, sigma_discharged=None, ion_energy=0.0):
        """Voltage (V) from formation energies per atom (eV/atom; scalars or arrays), or from total energies per
        atom with ``ion_energy`` the ion's metal on the same scale (V = a_c·e_c − a_d·e_d + μ/z), and, when both
        standard deviations are given, its standard deviation, the two errors taken as independent
        (errors of two similar structures are usually positively correlated, so this is an upper
        bound on σ_V for a model whose errors are). Returns ``(V, σ_V or None)``."""
        a_c, a_d = self.coefficients
        v = a_c * np.asarray(ef_charged, dtype=float) - a_d * np.asarray(ef_discharged, dtype=float)
        v = v + float(ion_energy) / self.z
        if sigma_charged is None or sigma_discharged is None:
            return v, None
        s = np.hypot(
            a_c * np.asarray(sigma_charged, dtype=float), a_d * np.asarray(sigma_discharged, dtype=float)
        )
        return v, s

    @property
    def capacity_grav(self) -> float:
        """mAh/g, per mass of the discharged state."""
        return self.dx * self.z * FARADAY_MAH_PER_MOL / self.mass_discharged

    @property
    def capacity_vol(self) -> float:
        """mAh/cm³, per volume of the discharged state."""
        return self.dx * self.z * FARADAY_MAH_PER_MOL / (self.volume_discharged * 1e-24 * AVOGADRO)


def check_pair(charged, discharged, ion: str) -> PairGeometry:
    """Validate a charged/discharged pair for ``ion`` and return its :class:`PairGeometry`.

    ``charged``, ``discharged``: Crystals, pymatgen Structures or Compositions (volume NaN for a
    composition). Raises :class:`ElectrodeError` for an unknown ion, a discharged state without the
    ion, frameworks (the states without the ion) of different reduced formulas, or a discharged state
    that does not hold more ions per framework formula unit than the charged one.
    """
    z = ion_valence(ion)
    el = Element(ion)

    def comp_vol(x):
        if isinstance(x, Composition):
            return x, float("nan"), int(round(x.num_atoms))
        s = _structure(x)
        return s.composition, float(s.volume), len(s)

    (cc, _, nc), (cd, vd, nd) = comp_vol(charged), comp_vol(discharged)
    if cd[el] == 0:
        raise ElectrodeError(
            f"the discharged state {cd.reduced_formula} contains no {ion}: it cannot be the "
            f"{ion}-rich end of a {ion} insertion electrode"
        )
    fc = Composition({e: a for e, a in cc.items() if e != el})
    fd = Composition({e: a for e, a in cd.items() if e != el})
    if len(fc) == 0 or len(fd) == 0:
        raise ElectrodeError(f"{cc.reduced_formula} / {cd.reduced_formula}: no framework besides {ion}")
    if fc.reduced_formula != fd.reduced_formula:
        raise ElectrodeError(
            f"the frameworks do not match: charged {cc.reduced_formula} has framework "
            f"{fc.reduced_formula}, discharged {cd.reduced_formula} has {fd.reduced_formula}"
        )
    red, f_c = fc.get_reduced_composition_and_factor()
    f_d = fd.get_reduced_composition_and_factor()[1]
    x_c, x_d = cc[el] / f_c, cd[el] / f_d
    if not x_d > x_c + 1e-9:
        raise ElectrodeError(
            f"the discharged state {cd.reduced_formula} holds {x_d:g} {ion} per {red.reduced_formula},"
            f" not more than the charged {cc.reduced_formula} ({x_c:g}): swapped states?"
        )
    return PairGeometry(
        ion=ion,
        z=z,
        framework=red.reduced_formula,
        n_charged=nc,
        n_discharged=nd,
        f_charged=float(f_c),
        f_discharged=float(f_d),
        x_charged=float(x_c),
        x_discharged=float(x_d),
        mass_discharged=float(cd.weight) / f_d,
        volume_discharged=vd / f_d,
    )


# ----------------------------------------------------------------------------------------------
# pymatgen's electrode
# ----------------------------------------------------------------------------------------------


def insertion_electrode(charged_entry, discharged_entry, ion: str, ion_energy: float = 0.0, checked: bool = False):
    """pymatgen's ``InsertionElectrode`` of one charged and one discharged entry, the ion's metal at
    ``ion_energy`` eV/atom on the entries' scale (0: formation energies).

    Returns ``(electrode, note)``. ``InsertionElectrode.from_entries`` keeps only the entries on the
    convex hull of its own entries (the elements set high); when the discharged state lies above the
    line from the charged state to the ion (V < 0 in effect) it is dropped and no voltage pair is left.
    Then the electrode is built from pymatgen's bare ``InsertionVoltagePair`` of the two entries and
    ``note`` says so; the voltage is still pymatgen's.
    """
    if not checked:  # pair_properties has checked the pair already
        check_pair(
            charged_entry.structure if hasattr(charged_entry, "structure") else charged_entry.composition,
            discharged_entry.structure if hasattr(discharged_entry, "structure") else discharged_entry.composition,
            ion,
        )
    ion_e = ion_entry(ion, ion_energy)
    try:
        el = InsertionElectrode.from_entries([charged_entry, discharged_entry], ion_e)
        if len(el.voltage_pairs) == 1:
            return el, ""
    except IndexError:  # one stable entry: no voltage pair
        pass
    vp = InsertionVoltagePair.from_entries(charged_entry, discharged_entry, ion_e)
    el = InsertionElectrode(
        voltage_pairs=(vp,),
        working_ion_entry=ion_e,
        framework_formula=vp.framework_formula,
        stable_entries=(vp.entry_charge, vp.entry_discharge),
        unstable_entries=(),
    )
    return el, "pymatgen's electrode hull drops one state (discharged above the charged-ion tie line)"


def electrode_properties(electrode) -> dict:
    """The figures of merit of a pymatgen electrode, in the units MP's electrode documents use."""
    return {
        "voltage": float(electrode.get_average_voltage()),  # V
        "capacity_grav": float(electrode.get_capacity_grav()),  # mAh/g
        "capacity_vol": float(electrode.get_capacity_vol()),  # mAh/cm³
        "specific_energy": float(electrode.get_specific_energy()),  # Wh/kg
        "energy_density": float(electrode.get_energy_density()),  # Wh/L
        "max_delta_volume": float(electrode.max_delta_volume),  # max(V)/min(V) - 1
        "num_steps": int(electrode.num_steps),
        "framework": electrode.framework_formula,
    }


def pair_properties(
    charged,
    discharged,
    ef_charged: float,
    ef_discharged: float,
    ion: str,
    ids: tuple[str | None, str | None] = (None, None),
    ion_energy: float = 0.0,
) -> dict:
    """Voltage, capacities, specific energy and energy density of one pair from formation energies (eV/atom),
    or from total energies per atom with ``ion_energy`` the ion's metal on the same scale (eV/atom).

    ``charged``, ``discharged``: Crystals or pymatgen Structures. All numbers come from pymatgen's
    ``InsertionElectrode`` (:func:`electrode_properties`), plus ``dx`` (ions per framework formula unit),
    ``z``, ``note`` (see :func:`insertion_electrode`) and ``geometry`` (the pair's :class:`PairGeometry`, checked
    once here).
    """
    charged, discharged = _structure(charged), _structure(discharged)
    geo = check_pair(charged, discharged, ion)
    ce = formation_entry(charged, ef_charged, ids[0])
    de = formation_entry(discharged, ef_discharged, ids[1])
    el, note = insertion_electrode(ce, de, ion, ion_energy, checked=True)
    return {**electrode_properties(el), "dx": geo.dx, "z": geo.z, "note": note, "geometry": geo}


# ----------------------------------------------------------------------------------------------
# MP's electrode pairs and the mirror
# ----------------------------------------------------------------------------------------------


def _reduced(formula: str) -> str:

    return Composition(formula).reduced_formula


def composition_key(numbers) -> tuple:
    """A hashable reduced composition from atomic numbers (or a pymatgen Composition): ((Z, count), ...)
    with the counts divided by their gcd; equal for every cell and polymorph of one reduced formula."""
    if hasattr(numbers, "items"):  # a Composition
        z = np.array([e.Z for e in numbers], dtype=np.int64)
        n = np.array([numbers[e] for e in numbers], dtype=float)
        if not np.allclose(n, np.round(n)):
            raise ValueError(f"{numbers} has non-integer amounts")
        n = np.round(n).astype(np.int64)
        o = np.argsort(z)
        z, n = z[o], n[o]
    else:
        z, n = np.unique(np.asarray(numbers), return_counts=True)
    g = int(np.gcd.reduce(n))
    return tuple(zip(z.tolist(), (n // g).tolist(), strict=True))


def composition_keys(crystals: Sequence[Crystal]) -> list[tuple]:
    """:func:`composition_key` of every crystal (no Structure is built: ~10 µs each)."""
    return [composition_key(c.numbers) for c in crystals]


def match_pairs(
    pairs: pd.DataFrame, table: pd.DataFrame, energy: str = "formation_energy_per_atom"
) -> pd.DataFrame:
    """The pairs with both structures in ``table`` (a ``lib.data`` table), with structures and energies.

    Adds ``charged`` / ``discharged`` (Crystals), ``ef_charged`` / ``ef_discharged`` (``energy``, eV/atom)
    and ``formula_charged`` / ``formula_discharged`` (the mirror structures' reduced formulas) and
    ``formula_ok`` (both equal the pairs file's). ``attrs["coverage"]`` counts all pairs by which ends
    the table holds (both / charged only / discharged only / neither) and by ion.
    """
    t = table.drop_duplicates("material_id").set_index("material_id")
    has = t[energy].notna() if energy in t.columns else pd.Series(False, index=t.index)
    ok_ids = set(t.index[has])
    hi, lo = pairs["high_mpid"].isin(ok_ids), pairs["low_mpid"].isin(ok_ids)
    status = np.select([hi & lo, hi, lo], ["both", "charged only", "discharged only"], "neither")
    out = pairs[hi & lo].copy().reset_index(drop=True)
    out["charged"] = t.loc[out["high_mpid"], "structure"].to_list()
    out["discharged"] = t.loc[out["low_mpid"], "structure"].to_list()
    out["ef_charged"] = t.loc[out["high_mpid"], energy].to_numpy(dtype=float)
    out["ef_discharged"] = t.loc[out["low_mpid"], energy].to_numpy(dtype=float)
    out["formula_charged"] = [c.formula for c in out["charged"]]
    out["formula_discharged"] = [c.formula for c in out["discharged"]]
    out["formula_ok"] = [
        (a == _reduced(b)) and (c == _reduced(d))
        for a, b, c, d in zip(
            out["formula_charged"],
            out["high_formula"],
            out["formula_discharged"],
            out["low_formula"],
            strict=True,
        )
    ]
    cov = pd.crosstab(pd.Series(status, name="in table", index=pairs.index), pairs["ion"])
    # plain dicts in attrs (pandas compares attrs with == when it concatenates; a DataFrame there breaks that)
    out.attrs = {"coverage": cov.to_dict(orient="index"), "n_pairs": len(pairs), "energy": energy}
    return out


def pair_table(
    matched: pd.DataFrame,
    ef_charged: str = "ef_charged",
    ef_discharged: str = "ef_discharged",
    prefix: str = "dft",
    progress: bool = True,
    ion_energies: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Electrode properties of every matched pair from the energies in two columns (eV/atom), via pymatgen:
    formation energies, or total energies with ``ion_energies`` (each ion's metal, eV/atom, same model).

    Adds ``<prefix>_voltage`` (V), ``<prefix>_capacity_grav`` (mAh/g), ``<prefix>_capacity_vol``
    (mAh/cm³), ``<prefix>_specific_energy`` (Wh/kg), ``<prefix>_energy_density`` (Wh/L), ``dx``,
    ``framework`` and ``<prefix>_note``; a pair that cannot be computed gets NaN and the reason in
    ``<prefix>_error`` (the rest goes on).
    """
    keys = ("voltage", "capacity_grav", "capacity_vol", "specific_energy", "energy_density")
    rows = []
    it = zip(
        matched["charged"],
        matched["discharged"],
        matched[ef_charged],
        matched[ef_discharged],
        matched["ion"],
        matched.get("high_mpid", [None] * len(matched)),
        matched.get("low_mpid", [None] * len(matched)),
        strict=True,
    )
    for c, d, ec, ed, ion, hid, lid in tqdm(
        it, total=len(matched), desc=f"{prefix} voltages", disable=not progress
    ):
        try:
            mu = 0.0 if ion_energies is None else ion_energies[ion]
            p = pair_properties(c, d, ec, ed, ion, ids=(hid, lid), ion_energy=mu)
            rows.append(
                {
                    **{f"{prefix}_{k}": p[k] for k in keys},
                    "dx": p["dx"],
                    "framework": p["framework"],
                    f"{prefix}_note": p["note"],
                    f"{prefix}_error": "",
                }
            )
        except (ElectrodeError, ValueError) as exc:
            rows.append(
                {
                    **{f"{prefix}_{k}": np.nan for k in keys},
                    f"{prefix}_note": "",
                    f"{prefix}_error": f"{type(exc).__name__}: {exc}",
                }
            )
    res = pd.DataFrame(rows, index=matched.index)
    out = matched.drop(columns=[c for c in res.columns if c in matched.columns]).join(res)
    out.attrs = dict(matched.attrs)
    return out


def voltages_from_energies(
    geometries: Sequence[PairGeometry], ef_charged, ef_discharged, sigma_charged=None, sigma_discharged=None,
    ion_energy=0.0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Voltages (V) of many pairs at once from formation energies (eV/atom) by :meth:`PairGeometry.voltage`
    (or total energies with ``ion_energy``, the ion's metal per atom, a scalar or one per pair), with σ_V
    when both σ arrays are given (None otherwise)."""
    a = np.array([g.coefficients for g in geometries], dtype=float).reshape(-1, 2)
    z = np.array([g.z for g in geometries], dtype=float)
    ec, ed = np.asarray(ef_charged, dtype=float), np.asarray(ef_discharged, dtype=float)
    v = a[:, 0] * ec - a[:, 1] * ed + np.asarray(ion_energy, dtype=float) / z
    if sigma_charged is None or sigma_discharged is None:
        return v, None
    return v, np.hypot(
        a[:, 0] * np.asarray(sigma_charged, float), a[:, 1] * np.asarray(sigma_discharged, float)
    )


#: a formation-energy predictor ``predict(crystals) -> (mean, std or None)`` (eV/atom)
FormationPredictor = Callable[[Sequence[Crystal]], tuple[np.ndarray, np.ndarray | None]]


__all__ = [
    "WORKING_IONS",
    "PAIRS_FILE",
    "PAIR_COLUMNS",
    "ElectrodeError",
    "PairGeometry",
    "FormationPredictor",
    "check_ion",
    "ion_valence",
    "formation_entry",
    "ion_entry",
    "check_pair",
    "insertion_electrode",
    "electrode_properties",
    "pair_properties",
    "read_pairs",
    "composition_key",
    "composition_keys",
    "match_pairs",
    "pair_table",
    "voltages_from_energies",
]
