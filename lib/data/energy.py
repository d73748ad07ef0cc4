"""Which total energies per atom are on the PBE scale, in a table that mixes functionals (MP 2024)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: MP's PBE elemental reference energies (eV/atom; O with MP2020's correction) of three common elements. They
#: tell which family of energies in a table is the PBE one: r2SCAN's lie 0.5-3.4 eV/atom lower for these.
PBE_REFERENCES = {3: -1.909, 8: -4.952, 14: -5.425}
#: largest |E - E_f - sum_i x_i mu_i| (eV/atom) of an energy on the PBE scale. On the mirror the PBE family
#: fits to 5e-5 eV/atom at the median and 8e-4 at the 99th percentile; the r2SCAN values miss by 0.1-80.
ENERGY_SCALE_TOL = 0.05


@dataclass
class EnergyScale:
    """Result of :func:`energy_scale`: which energies are on the PBE scale, and the fitted references."""

    on_scale: np.ndarray  # bool per row (True also where no check was made: too few rows in all)
    undetermined: np.ndarray  # bool per row: has an element too rare among the PBE energies to check it
    residual: np.ndarray  # E - E_f - sum_i x_i mu_i in eV/atom (NaN where a value is missing)
    references: dict[int, float]  # fitted elemental reference energy per atomic number (eV/atom)
    checked: bool  # False: too few rows, or no dominant PBE family; nothing was flagged
    note: str


def energy_scale(numbers: Sequence[np.ndarray], energy: np.ndarray, formation: np.ndarray,
                 tol: float = ENERGY_SCALE_TOL, min_rows: int = 500, min_count: int = 5) -> EnergyScale:
    """Which total energies per atom are PBE (GGA/GGA+U) energies, in a table that mixes functionals.

    A formation energy is E_f = E - sum_i x_i mu_i, with x_i the atomic fractions and mu_i the elemental
    reference energies of the functional E was computed with. Given energies and formation energies from
    the same release (MP 2024 mixes PBE and r2SCAN), the energies of one functional satisfy this with one set
    of mu_i to numerical precision, and those of another functional miss it by their different references.
    The mu_i are fitted by least squares, dropping the rows that miss by more than 0.5 eV/atom, then by
    more than ``tol``, and refitting until the set stops changing. This finds the dominant family (PBE is
    70 % of MP 2024's energies), and the result is accepted only if that family fits tightly (median
    residual below tol / 10) and its references for Li, O and Si (each in at least 50 of its rows) agree
    with :data:`PBE_REFERENCES` within 0.1 eV/atom; otherwise nothing is flagged and ``checked`` is False.
    A row with an element in fewer than ``min_count`` rows of the family cannot be checked (that element's
    reference is fitted to those rows): it counts as off the scale, marked ``undetermined``.
    """
    energy = np.asarray(energy, dtype=float)
    formation = np.asarray(formation, dtype=float)
    n = len(energy)
    ok = np.isfinite(energy) & np.isfinite(formation)
    residual = np.full(n, np.nan)
    if ok.sum() < min_rows:
        return EnergyScale(np.ones(n, bool), np.zeros(n, bool), residual, {}, False,
                           f"energy scale not checked: {int(ok.sum())} rows with both energies "
                           f"(< {min_rows})")
    rows = np.flatnonzero(ok)
    zmax = max(int(np.max(numbers[i])) for i in rows) + 1
    x = np.zeros((len(rows), zmax))
    for k, i in enumerate(rows):
        z, c = np.unique(numbers[i], return_counts=True)
        x[k, z] = c / c.sum()
    y = energy[rows] - formation[rows]
    keep = np.ones(len(rows), bool)
    for it in range(50):  # fit, drop the rows that miss (0.5 eV/atom at first, then tol), refit, until stable
        mu = np.linalg.lstsq(x[keep], y[keep], rcond=None)[0]
        r = y - x @ mu
        new = np.abs(r) <= (0.5 if it < 5 else tol)
        if new.sum() < min_count or (new == keep).all():
            break
        keep = new
    count = (x[keep] > 0).sum(axis=0)
    anchors = {z: float(mu[z]) for z in PBE_REFERENCES if z < len(count) and count[z] >= 50}
    tight = keep.sum() >= min_count and np.median(np.abs(r[keep])) <= tol / 10
    if not (tight and anchors and all(abs(v - PBE_REFERENCES[z]) < 0.1 for z, v in anchors.items())):
        return EnergyScale(np.ones(n, bool), np.zeros(n, bool), residual, {}, False,
                           "energy scale not checked: the largest consistent family of energies is not PBE "
                           "(or there is none)")
    # an element in only a few PBE rows has a reference fitted to them: it would absorb any energy
    rare = ((x > 0) & (count < min_count)).any(axis=1)
    residual[rows] = r
    on, und = np.ones(n, bool), np.zeros(n, bool)
    on[rows] = (np.abs(r) <= tol) & ~rare
    und[rows] = rare
    refs = {z: float(mu[z]) for z in range(len(count)) if count[z] >= min_count}
    return EnergyScale(on, und, residual, refs, True,
                       f"{int(on[rows].sum()):,} of {len(rows):,} energies on the PBE scale "
                       f"(|E - E_f - sum x mu| <= {tol} eV/atom, median {np.median(np.abs(r[keep])):.1e}; "
                       f"{int(rare.sum())} with an element in < {min_count} PBE rows left unchecked)")
