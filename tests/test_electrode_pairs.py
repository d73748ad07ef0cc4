"""lib.data.electrodes: every MP insertion-electrode pair with both structures, through lib.data's one
reader."""

from __future__ import annotations

import lzma
import shutil

import pandas as pd
import pytest

from lib.data import load_dataset
from lib.data.electrodes import load_electrode_pairs, pair_ids


@pytest.fixture(scope="module")
def pairs(mirror):
    return load_electrode_pairs(mirror)


def test_every_pair_has_both_structures(pairs):
    assert len(pairs) == pairs.attrs["n_pairs"] == 4401
    assert pairs.attrs["drops"] == {}
    counts = pairs["ion"].value_counts().to_dict()
    assert counts == {
        "Li": 2291,
        "Ca": 484,
        "Mg": 393,
        "Zn": 385,
        "Na": 328,
        "Y": 157,
        "Al": 149,
        "K": 125,
        "Rb": 50,
        "Cs": 39,
    }
    assert pairs["charged"].notna().all() and pairs["discharged"].notna().all()
    # each structure makes the pairs file's formula
    from pymatgen.core import Composition

    for c, f in zip(pairs["discharged"][:300], pairs["low_formula"][:300], strict=True):
        assert c.formula == Composition(f).reduced_formula
    # the DFT formation energies come only with the CGCNN file's structures
    from_mirror = pairs["source_charged"].eq("mp_cgcnn_2020")
    assert pairs.loc[from_mirror, "ef_charged"].notna().all()
    assert pairs.loc[~from_mirror, "ef_charged"].isna().all()
    assert len(pair_ids(pairs)) == len(set(pairs["high_mpid"]) | set(pairs["low_mpid"]))


def test_structure_files_are_read_and_validated(mirror):
    t = load_dataset("electrode_structures", source="mirror", mirror=mirror, progress=False, verbose=False)
    assert len(t) == 5663 and len(t.attrs["rejected"]) == 0
    assert t["formation_energy_per_atom"].isna().all()  # structures only: no energies, none dropped for it


def _damaged_mirror(mirror, tmp_path):
    """A copy of the mirror whose electrode-structure file has one structure swapped for another formula's and
    one structure removed, and whose pair file has a pair pointing at an id no file holds."""
    d = tmp_path / "mirror"
    d.mkdir()
    for f in ("mp_cgcnn_2020.jsonl.xz", "mp_elastic_cgcnn_2020.jsonl.xz", "mp_energy_2024.csv"):
        (d / f).symlink_to(mirror / f)
    lines = lzma.open(mirror / "mp_electrode_structures.jsonl.xz", "rt").read().splitlines()
    import json

    rows = [json.loads(x) for x in lines]
    first, second = rows[0], rows[1]
    wrong = dict(first, cif=second["cif"])  # the id and formula of one, the structure of another
    dropped = rows[2]["material_id"]
    kept = [wrong, second, *rows[3:]]
    with lzma.open(d / "mp_electrode_structures.jsonl.xz", "wt") as f:
        f.write("\n".join(json.dumps(r) for r in kept) + "\n")
    shutil.copy(mirror / "mp_insertion_electrodes.csv", d / "mp_insertion_electrodes.csv")
    return d, first["material_id"], dropped


def test_a_wrong_or_missing_structure_is_refused_with_its_reason(mirror, tmp_path):
    d, wrong_id, dropped_id = _damaged_mirror(mirror, tmp_path)
    t = load_electrode_pairs(d)
    rej = pd.DataFrame(t.attrs["rejected"])
    p = pd.read_csv(d / "mp_insertion_electrodes.csv")
    hit_wrong = set(p.loc[p.high_mpid.eq(wrong_id) | p.low_mpid.eq(wrong_id), "battery_id"])
    hit_dropped = set(p.loc[p.high_mpid.eq(dropped_id) | p.low_mpid.eq(dropped_id), "battery_id"])
    assert hit_wrong and hit_dropped
    assert set(rej.loc[rej.reason.str.startswith("no "), "battery_id"]) >= hit_dropped | hit_wrong
    # the swapped CIF is refused by the structure file's reader (formula mismatch), so its pairs lack that end
    detail = rej.set_index("battery_id").loc[sorted(hit_wrong)[0], "detail"]
    assert "formula mismatch" in detail
    assert len(t) + len(rej) == 4401
    assert sum(t.attrs["drops"].values()) == len(rej)
