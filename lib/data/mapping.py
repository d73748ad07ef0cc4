"""The one mapping table: provider property names and units -> the standard columns of ``targets``."""

from __future__ import annotations

from dataclasses import dataclass

EV_PER_JOULE = 1.0 / 1.602176634e-19  # exact (SI 2019)


@dataclass(frozen=True)
class PropertyMapping:
    """How one provider field becomes a standard column: value * factor, then the transform.

    field: the provider's name ("a.b" reads key b of a dict field); unit: the provider's unit;
    transform: "x" (as is) or "log10" (of value * factor, non-positive values dropped);
    pick: how a list value becomes one number ("first", "min", "vrh": the entry whose companion
    ``<field minus _value>_type`` is voigt_reuss_hill_average, else the first).
    """

    provider: str
    field: str
    column: str
    unit: str
    factor: float = 1.0
    transform: str = "x"
    pick: str = "first"
    note: str = ""


_NMD = "_nmd_results_properties_"
_J, _PA = EV_PER_JOULE, 1e-9  # J -> eV, Pa -> GPa
# fmt: off
PROPERTY_MAP: tuple[PropertyMapping, ...] = (
    # provider  provider field                    standard column          provider unit  conversion
    # Materials Project summary documents (mp-api 0.46, emmet SummaryDoc)
    PropertyMapping("mp", "formation_energy_per_atom", "formation_energy_per_atom", "eV/atom"),
    PropertyMapping("mp", "energy_per_atom", "energy_per_atom", "eV/atom"),
    PropertyMapping("mp", "efermi", "efermi", "eV"),
    PropertyMapping("mp", "band_gap", "band_gap", "eV"),
    PropertyMapping("mp", "bulk_modulus.vrh", "log10_K_VRH", "GPa", transform="log10"),
    PropertyMapping("mp", "shear_modulus.vrh", "log10_G_VRH", "GPa", transform="log10"),
    PropertyMapping("mp", "homogeneous_poisson", "poisson_ratio", "1"),
    # the project's JSON Lines mirror and snapshots (raw mirror files and export_snapshot files)
    PropertyMapping("mirror", "formation_energy_per_atom", "formation_energy_per_atom", "eV/atom"),
    PropertyMapping("mirror", "energy_per_atom", "energy_per_atom", "eV/atom"),
    PropertyMapping("mirror", "efermi", "efermi", "eV"),
    PropertyMapping("mirror", "band_gap", "band_gap", "eV"),
    PropertyMapping("mirror", "log10_K_VRH", "log10_K_VRH", "log10(GPa)"),
    PropertyMapping("mirror", "log10_G_VRH", "log10_G_VRH", "log10(GPa)"),
    PropertyMapping("mirror", "K_VRH", "log10_K_VRH", "GPa", transform="log10"),
    PropertyMapping("mirror", "G_VRH", "log10_G_VRH", "GPa", transform="log10"),
    PropertyMapping("mirror", "poisson_ratio", "poisson_ratio", "1"),
    # the MEGNet paper's mp.2018.6.1.json (figshare): moduli in log10(GPa), the unit of its models;
    # a file whose moduli look like GPa (median > 4) is read through the *_GPa rows instead
    PropertyMapping("megnet", "formation_energy_per_atom", "formation_energy_per_atom", "eV/atom"),
    PropertyMapping("megnet", "band_gap", "band_gap", "eV"),
    PropertyMapping("megnet", "K_VRH", "log10_K_VRH", "log10(GPa)"),
    PropertyMapping("megnet", "G_VRH", "log10_G_VRH", "log10(GPa)"),
    PropertyMapping("megnet", "K_VRH_GPa", "log10_K_VRH", "GPa", transform="log10"),
    PropertyMapping("megnet", "G_VRH_GPa", "log10_G_VRH", "GPa", transform="log10"),
    # OQMD through OPTIMADE (qmpy's provider fields, eV)
    PropertyMapping("oqmd", "_oqmd_delta_e", "formation_energy_per_atom", "eV/atom"),
    PropertyMapping("oqmd", "_oqmd_band_gap", "band_gap", "eV"),
    PropertyMapping("oqmd", "_oqmd_stability", "energy_above_hull", "eV/atom",
                    note="OQMD's hull distance (negative below the hull); an extra column, not a target"),
    # NOMAD through OPTIMADE: results.* quantities flattened with "_nmd_" and "_", in SI units
    PropertyMapping("nomad", _NMD + "electronic_band_structure_electronic_band_gap_value", "band_gap", "J",
                    factor=_J, pick="min"),
    PropertyMapping("nomad", _NMD + "electronic_dos_electronic_band_gap_value", "band_gap", "J",
                    factor=_J, pick="min"),
    PropertyMapping("nomad", _NMD + "mechanical_bulk_modulus_value", "log10_K_VRH", "Pa",
                    factor=_PA, transform="log10", pick="vrh"),
    PropertyMapping("nomad", _NMD + "mechanical_shear_modulus_value", "log10_G_VRH", "Pa",
                    factor=_PA, transform="log10", pick="vrh"),
)
# fmt: on
