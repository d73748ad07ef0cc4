"""A user's files are read one way (lib.data.sources.files): the same folder through training's loader and
through prediction's reader gives the same ids and the same structures, and the same snapshot likewise."""

from __future__ import annotations

import numpy as np
from hostile import good_structures

from lib import data
from lib.predict import read_inputs
from lib.structures import Crystal


def _folder(tmp_path):
    """A CGCNN folder with a byte-order mark, CRLF line ends, a blank line and a line that is no file name."""
    folder = tmp_path / "mine"
    folder.mkdir()
    ids = [f"my-{k}" for k in range(5)]
    crystals = [Crystal.from_structure(s) for s in good_structures()[:5]]
    for mid, c in zip(ids, crystals, strict=True):
        (folder / f"{mid}.cif").write_text(c.to_cif(mid))
    lines = [f"{mid},{0.5 * k:.2f}" for k, mid in enumerate(ids)]
    lines.insert(2, "")
    lines.append("../escape,1.0")
    (folder / "id_prop.csv").write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode())
    return folder, ids


def _same(a: Crystal, b: Crystal) -> None:
    np.testing.assert_array_equal(a.numbers, b.numbers)
    np.testing.assert_allclose(a.lattice, b.lattice, atol=1e-9)
    np.testing.assert_allclose(a.frac_coords, b.frac_coords, atol=1e-9)


def test_training_and_prediction_read_a_folder_the_same_way(tmp_path):
    folder, ids = _folder(tmp_path)
    table = data.load_dataset("mine", source="folder", path=folder, target="band_gap", cache=False,
                              progress=False, verbose=False)
    items = read_inputs([folder])
    read = [it for it in items if it[2] is not None]
    assert table["material_id"].tolist() == [it[0] for it in read] == ids  # the BOM is not part of an id
    for c, it in zip(table["structure"], read, strict=True):
        _same(c, it[2])
    # the line that is no file name: refused by both, for the same reason
    bad = [it for it in items if it[2] is None]
    assert [it[0] for it in bad] == ["../escape"] and "is a path, not a file name" in bad[0][3]
    rej = table.attrs["rejected"].set_index("material_id")
    assert rej.loc["id_prop.csv line 7", "reason"] == "bad id"
    assert "is a path, not a file name" in rej.loc["id_prop.csv line 7", "detail"]


def test_training_and_prediction_read_a_snapshot_the_same_way(tmp_path):
    folder, ids = _folder(tmp_path)
    table = data.load_dataset("mine", source="folder", path=folder, target="band_gap", cache=False,
                              progress=False, verbose=False)
    snap = data.export_snapshot(table, tmp_path / "mine.jsonl.xz")
    again = data.load_dataset("mine", source="mirror", mirror=snap, cache=False, progress=False,
                              verbose=False)
    items = read_inputs([snap])
    assert again["material_id"].tolist() == [it[0] for it in items] == ids
    assert all(it[3] == "" for it in items)
    for c, it in zip(again["structure"], items, strict=True):
        _same(c, it[2])
