"""Damaged files on disk: a broken line costs one row (reported with its file and line), a truncated or
corrupt file stops the load with its name and what to do, a damaged cache is rebuilt."""

from __future__ import annotations

import gzip
import json
import lzma
import zipfile

import numpy as np
import pandas as pd
import pytest
from hostile import good_structures

from lib import data
from lib.data.sources import mp
from lib.graphs import GraphSet, build_graphs, cgcnn_params
from lib.structures import Crystal


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """A small standard table of ten good structures (from tests/hostile.py), with a band gap each."""
    crystals = [Crystal.from_structure(s) for s in good_structures(0)[:10]]
    df = pd.DataFrame({"material_id": [f"m-{k}" for k in range(10)], "structure": crystals,
                       "band_gap": np.linspace(0.1, 1.0, 10)})
    for col in data.TARGETS:
        df[col] = df.get(col, np.nan)
    return df


def _load(path, tmp_path, **kw):
    return data.load_dataset("snap", source="mirror", mirror=path, cache_dir=tmp_path / "proc",
                             progress=False, verbose=False, **kw)


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.xz", ".jsonl.gz"])
def test_a_broken_line_costs_one_row_and_is_reported(table, tmp_path, suffix):
    path = data.export_snapshot(table, tmp_path / f"snap{suffix}")
    lines = data.sources.files.open_text(path).read().splitlines()
    lines[3] = lines[3][: len(lines[3]) // 2]  # cut in the middle: not JSON
    lines[6] = "[1, 2, 3]"  # JSON, but no object
    with data.sources.files.open_text(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    df = _load(path, tmp_path)
    assert df["material_id"].tolist() == [f"m-{k}" for k in range(10) if k not in (3, 6)]
    rej = df.attrs["rejected"]
    bad = rej[rej["reason"] == "bad line"]
    assert bad["material_id"].tolist() == [f"{path.name} line 4", f"{path.name} line 7"]
    assert "not valid JSON" in bad["detail"].iloc[0] and "a JSON list, not an object" in bad["detail"].iloc[1]
    assert df.attrs["drops"] == {"bad line": 2}


@pytest.mark.parametrize("suffix", [".jsonl.xz", ".jsonl.gz", ".jsonl"])
def test_a_truncated_file_stops_with_its_name(table, tmp_path, suffix):
    path = data.export_snapshot(table, tmp_path / f"snap{suffix}")
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * 0.6)])
    with pytest.raises(data.DataUnavailable, match=rf"{path.name} is truncated or corrupt after line \d+ .*"
                                                   "copy or download it again"):
        _load(path, tmp_path)


def test_a_corrupt_compressed_file_stops_with_its_name(table, tmp_path):
    path = data.export_snapshot(table, tmp_path / "snap.jsonl.xz")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2: len(raw) // 2 + 64] = b"\x00" * 64
    path.write_bytes(bytes(raw))
    with pytest.raises(data.DataUnavailable, match=r"snap.jsonl.xz is truncated or corrupt .*LZMAError"):
        _load(path, tmp_path)


def test_a_truncated_mirror_file_names_the_file(mirror, tmp_path):
    """A mirror folder whose main file is cut short (a copy interrupted): the file is named."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    ids = set()
    for key in ("main", "elastic"):
        with lzma.open(mirror / data.MIRROR_FILES[key], "rt") as src:
            head = [next(src) for _ in range(40)]
        ids |= {json.loads(x)["material_id"] for x in head}
        with lzma.open(folder / data.MIRROR_FILES[key], "wt") as dst:
            dst.writelines(head)
    (folder / data.MIRROR_FILES["energy"]).write_text(
        "material_id,energy_per_atom,formation_energy_per_atom_2024\n")
    ok = data.load_dataset("cgcnn", source="mirror", mirror=folder, cache=False, progress=False,
                           verbose=False)
    assert set(ok["material_id"]) == ids and len(ids) > 40  # the union of both files' first 40 rows
    main = folder / data.MIRROR_FILES["main"]
    raw = main.read_bytes()
    main.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(data.DataUnavailable, match=r"mp_cgcnn_2020.jsonl.xz is truncated or corrupt"):
        data.load_dataset("cgcnn", source="mirror", mirror=folder, cache=False, progress=False, verbose=False)


def test_a_corrupt_graph_cache_is_rebuilt(table, tmp_path):
    kw = dict(cache=True, cache_dir=tmp_path, n_jobs=1, progress=False, verbose=False, name="t")
    first = build_graphs(table, cgcnn_params(), **kw)
    (path,) = tmp_path.glob("t-*.npz")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 3])  # a truncated cache (a disk full, a killed copy)
    with pytest.warns(UserWarning, match="rebuilding the unreadable graph cache"):
        again = build_graphs(table, cgcnn_params(), **kw)
    assert np.array_equal(again.edge_src, first.edge_src) and np.array_equal(again.distance, first.distance)
    assert "loaded_from" not in again.report  # built, not read
    third = build_graphs(table, cgcnn_params(), **kw)  # the rewritten cache reads back
    assert third.report["loaded_from"] == str(path) and np.array_equal(third.edge_dst, first.edge_dst)
    assert isinstance(GraphSet.load(path), GraphSet)


def test_a_corrupt_soap_cache_is_recomputed(table, tmp_path):
    from lib.soap import soap_features

    crystals = list(table["structure"][:4])
    first = soap_features(crystals, cache_dir=tmp_path, n_jobs=1, progress=False)
    (path,) = [p for p in tmp_path.glob("soap_*.npz")]
    path.write_bytes(path.read_bytes()[:200])
    with pytest.warns(UserWarning, match="recomputing SOAP rows: unreadable cache"):
        again = soap_features(crystals, cache_dir=tmp_path, n_jobs=1, progress=False)
    assert (again != first).nnz == 0 and first.nnz > 0


def test_a_corrupt_mp_chunk_and_megnet_file_name_themselves(tmp_path):
    chunk = tmp_path / "chunk-00000-abc.json.gz"
    with gzip.open(chunk, "wt") as fh:
        json.dump({"ids": ["mp-1"], "docs": []}, fh)
    chunk.write_bytes(chunk.read_bytes()[:-8])
    with pytest.raises(data.FetchError, match="chunk-00000-abc.json.gz cannot be read.*delete it"):
        mp.records_mp([chunk], ["mp-1"])
    bad_zip = tmp_path / "raw" / "megnet" / "mp.2018.6.1.json.zip"
    bad_zip.parent.mkdir(parents=True)
    with zipfile.ZipFile(bad_zip, "w") as zf:
        zf.writestr("mp.2018.6.1.json", json.dumps([{"material_id": "mp-1"}]) * 50)
    bad_zip.write_bytes(bad_zip.read_bytes()[:100])
    with pytest.raises(data.DataUnavailable, match="mp.2018.6.1.json.zip is truncated or corrupt"):
        data.load_dataset("megnet", raw_dir=tmp_path / "raw", cache=False, download=False, verbose=False)
