"""Datasets: one tidy table per dataset, from the Materials Project, OPTIMADE, a mirror or a folder.

:func:`load_dataset` returns the *standard table*, one row per material:

- ``material_id`` (str), ``structure`` (a :class:`lib.structures.Crystal`: the fast array form the
  graph builders and caches use; ``crystal.to_structure()`` gives the pymatgen ``Structure``);
- one float64 column per target of :data:`TARGETS`, in the thesis's units (Table 2), NaN where a
  material lacks that target: ``formation_energy_per_atom`` (eV/atom), ``energy_per_atom``
  (eV/atom), ``efermi`` (eV), ``band_gap`` (eV), ``log10_K_VRH`` and ``log10_G_VRH`` (log10 of GPa),
  ``poisson_ratio`` (dimensionless);
- ``source`` (where the row came from) and ``retrieved`` (ISO date the row was read from it).

``df.attrs`` carries ``content_hash`` (a stable hash of ids, structures and targets, cited by run
records), ``rejected`` (material_id, target, reason, detail: every material or value left out, and
why), ``drops`` (counts by reason) and ``notes``.

Sources (``source=``): ``"mp"`` (mp-api's MPRester, key from ``MP_API_KEY``, resumable chunks under
data/raw/mp/), ``"optimade"`` (OQMD and NOMAD through OPTIMADE; provider names and units mapped by
:data:`PROPERTY_MAP`), ``"mirror"`` (the project's JSON Lines snapshot format, e.g. ../shared/data,
or a file written by :func:`export_snapshot`), ``"folder"`` (a CGCNN-format folder: id_prop.csv +
<id>.cif), ``"figshare"`` (the MEGNet paper's public mp.2018.6.1.json) and ``"auto"``.

Processed tables are cached in data/processed/ as parquet (Crystals as flat list columns), keyed by
the inputs' sizes and modification times and ``FORMAT_VERSION``: a changed input is never read
stale, and the second load of the full CGCNN dataset takes about a second.

The package, module by module: ``targets`` (the seven properties; no heavy imports), ``mapping``
(provider fields and units -> standard columns), ``sources/`` (one small module per source, each a
``plan(request) -> Job``, behind ``load.load_dataset``; ``sources.files`` reads a user's files, id_prop.csv
folders, CIFs and JSON Lines snapshots, one way for training and for ``lib.predict``), ``table`` (building
the standard table from records; splits, subsets, hashes, Table 2), ``energy`` (the PBE energy-scale
check), ``cache`` (parquet).
"""

from lib.data.cache import FORMAT_VERSION
from lib.data.energy import ENERGY_SCALE_TOL, PBE_REFERENCES, EnergyScale, energy_scale
from lib.data.load import SOURCES, load_dataset, resolve_source
from lib.data.mapping import EV_PER_JOULE, PROPERTY_MAP, PropertyMapping
from lib.data.sources.base import DataUnavailable, FetchError
from lib.data.sources.megnet import MEGNET_FILE, MEGNET_PAGE, MEGNET_URL
from lib.data.sources.mirror import MIRROR_FILES, export_snapshot
from lib.data.sources.mp import CGCNN_IDS_URL, MP_FIELDS
from lib.data.sources.optimade import OPTIMADE_PROVIDERS
from lib.data.table import (
    RejectedTable,
    check_targets,
    content_hash,
    split,
    summary,
    target_frame,
    target_table,
)
from lib.data.targets import DATASET_TARGETS, POISSON_RANGE, TARGETS, Target, target_info

__all__ = [
    "TARGETS",
    "DATASET_TARGETS",
    "POISSON_RANGE",
    "PROPERTY_MAP",
    "EV_PER_JOULE",
    "Target",
    "PropertyMapping",
    "DataUnavailable",
    "FetchError",
    "RejectedTable",
    "load_dataset",
    "resolve_source",
    "SOURCES",
    "export_snapshot",
    "split",
    "target_frame",
    "target_table",
    "target_info",
    "check_targets",
    "content_hash",
    "summary",
    "energy_scale",
    "EnergyScale",
    "PBE_REFERENCES",
    "ENERGY_SCALE_TOL",
    "FORMAT_VERSION",
    "OPTIMADE_PROVIDERS",
    "MEGNET_URL",
    "MEGNET_FILE",
    "MEGNET_PAGE",
    "MIRROR_FILES",
    "MP_FIELDS",
    "CGCNN_IDS_URL",
]
