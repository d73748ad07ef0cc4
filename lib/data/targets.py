"""The modelled properties (column, label, unit, description): the one list every module reads.

No heavy imports here (only dataclasses), so plots, records and the sweep can import it at the top.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """One modelled property: its column, plot label, unit and the thesis's description."""

    column: str
    label: str
    unit: str
    description: str
    note: str = ""


TARGETS: dict[str, Target] = {
    t.column: t
    for t in (
        Target(
            "formation_energy_per_atom",
            "Formation energy",
            "eV/atom",
            "DFT (PBE/PBE+U) formation energy per atom relative to the elements, with MP's corrections",
        ),
        Target(
            "energy_per_atom",
            "Energy per atom",
            "eV/atom",
            "DFT total energy per atom",
            "From the MP summary API of 2024-04-25 (mp_energy_2024.csv), joined by material id to the "
            "2020 structures: for the same ids the 2024 formation energy differs from the 2020 one by "
            "0.026 eV/atom at the median. MP 2024 mixes PBE (GGA/GGA+U) and r2SCAN total energies, whose "
            "absolute scales differ by eV/atom; only the values on the PBE scale are kept (see "
            "energy_scale: 25,414 of the 36,179 in the CGCNN table), so the target is one functional's.",
        ),
        Target("efermi", "Fermi energy", "eV", "Fermi energy of the DFT calculation"),
        Target("band_gap", "Band gap", "eV", "PBE band gap (0 for metals)"),
        Target(
            "log10_K_VRH",
            "Bulk modulus K_VRH",
            "log10(GPa)",
            "Voigt-Reuss-Hill average bulk modulus K_VRH from the elastic tensor, as log10 of GPa",
            "Non-positive moduli have no logarithm and are dropped.",
        ),
        Target(
            "log10_G_VRH",
            "Shear modulus G_VRH",
            "log10(GPa)",
            "Voigt-Reuss-Hill average shear modulus G_VRH from the elastic tensor, as log10 of GPa",
            "Non-positive moduli have no logarithm and are dropped.",
        ),
        Target(
            "poisson_ratio",
            "Poisson ratio",
            "–",
            "Homogeneous Poisson ratio from the elastic tensor",
            "Values outside [0, 0.5] are dropped, as in the thesis.",
        ),
    )
}

#: the targets each paper's dataset has
DATASET_TARGETS: dict[str, tuple[str, ...]] = {
    "cgcnn": tuple(TARGETS),
    "megnet": ("formation_energy_per_atom", "band_gap", "log10_K_VRH", "log10_G_VRH"),
}

POISSON_RANGE = (0.0, 0.5)


def target_info(column: str) -> tuple[str | None, str | None]:
    """(unit, label) of a target column; (None, None) for a column outside :data:`TARGETS` (your own)."""
    t = TARGETS.get(column)
    return (t.unit, t.label) if t is not None else (None, None)
