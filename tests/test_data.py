"""lib.data: the standard table from every source, its cache, splits and the rejection report."""

from __future__ import annotations

import json
import lzma
import math
import os
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

from lib import data, paths
from lib.structures import STRUCTURE_ATOL, Crystal, parse_cif

FIXTURES = Path(__file__).parent / "fixtures"


# ----------------------------------------------------------------------------------------------
# the real mirror (slow the first time: the full build is cached in data/processed)
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cgcnn(mirror) -> pd.DataFrame:
    return data.load_dataset("cgcnn", source="mirror", mirror=mirror, progress=False, verbose=False)


@pytest.mark.slow
def test_cgcnn_mirror_counts_and_drops(cgcnn):
    df = cgcnn
    assert len(df) == 36_744  # union of the main file (36,737) and the elastic file (3,191, 7 new)
    counts = {c: int(df[c].notna().sum()) for c in data.TARGETS}
    assert counts == {
        "formation_energy_per_atom": 36_737,
        "band_gap": 36_737,
        "efermi": 36_735,
        "energy_per_atom": 25_414,  # of 36,179 MP 2024 values: those on the PBE scale (energy_scale)
        "log10_K_VRH": 3_191,
        "log10_G_VRH": 3_191,
        "poisson_ratio": 3_188,
    }
    # every drop, by reason: 3 negative Poisson ratios; no non-positive modulus in this mirror; the MP 2024
    # energies of another functional (r2SCAN), or with an element too rare to check
    assert df.attrs["drops"] == {"energy_per_atom: not on the PBE energy scale": 10_092,
                                 "energy_per_atom: energy scale undetermined": 673,
                                 "poisson_ratio: outside [0, 0.5]": 3}
    rej = df.attrs["rejected"]
    pr = rej[rej["target"] == "poisson_ratio"]
    assert sorted(pr["material_id"]) == ["mp-554089", "mp-774922", "mp-775001"]
    assert set(pr["detail"]) == {"poisson_ratio = -0.06", "poisson_ratio = -0.12"}
    # what is kept is PBE-like: no energy per atom below Pu5Ir3's -12.66 eV/atom (r2SCAN's reach -83)
    assert df["energy_per_atom"].min() == pytest.approx(-12.661, abs=1e-3)
    elastic_only = df[df["formation_energy_per_atom"].isna()]
    assert len(elastic_only) == 7 and elastic_only["log10_K_VRH"].notna().all()
    assert set(elastic_only["source"]) == {"mirror:mp_elastic_cgcnn_2020"}
    assert df["material_id"].is_unique
    assert all(isinstance(c, Crystal) for c in df["structure"].iloc[::997])


@pytest.mark.slow
def test_cgcnn_values_match_the_mirror_files(cgcnn, mirror):
    df = cgcnn.set_index("material_id")
    with lzma.open(mirror / "mp_elastic_cgcnn_2020.jsonl.xz", "rt") as fh:
        first = json.loads(fh.readline())
    assert first["material_id"] == "mp-10000"
    row = df.loc["mp-10000"]
    assert row["log10_K_VRH"] == pytest.approx(math.log10(first["K_VRH"]), abs=0)
    assert row["log10_G_VRH"] == pytest.approx(math.log10(first["G_VRH"]), abs=0)
    assert row["structure"].equals(parse_cif(first["cif"]))
    assert df.loc["mp-1", "formation_energy_per_atom"] == 0.038769612068965564
    # MP 2024 values, joined by id: mp-1 (Cs) is an r2SCAN energy (-25.09 eV/atom), left out with its reason
    assert np.isnan(df.loc["mp-1", "energy_per_atom"])
    rej = cgcnn.attrs["rejected"].set_index("material_id")
    assert rej.loc["mp-1", "reason"] == "not on the PBE energy scale"
    e24 = pd.read_csv(mirror / "mp_energy_2024.csv").drop_duplicates("material_id").set_index("material_id")
    kept = df["energy_per_atom"].dropna()
    assert (kept == e24.loc[kept.index, "energy_per_atom"]).all()  # kept values are the file's, unchanged
    assert df.loc["mp-1", "structure"].numbers.tolist() == [55]


@pytest.mark.slow
def test_cgcnn_second_load_is_fast_and_identical(cgcnn, mirror):
    t0 = time.perf_counter()
    again = data.load_dataset("cgcnn", source="mirror", mirror=mirror, progress=False, verbose=False)
    seconds = time.perf_counter() - t0
    assert seconds < 10, f"cached load took {seconds:.1f} s"
    assert again.attrs["content_hash"] == cgcnn.attrs["content_hash"]
    assert len(again.attrs["content_hash"]) == 64
    pd.testing.assert_frame_equal(again.drop(columns="structure"), cgcnn.drop(columns="structure"))
    # tables carrying the report in attrs still concatenate and merge (pandas compares attrs)
    both = pd.concat([again.iloc[:3], cgcnn.iloc[3:6]])
    assert len(both) == 6 and len(both.merge(both[["material_id"]], on="material_id")) == 6


@pytest.mark.slow
def test_target_frame_subsamples_deterministically(cgcnn):
    a = data.target_frame(cgcnn, "log10_G_VRH", n_max=300, seed=1)
    b = data.target_frame(cgcnn, "log10_G_VRH", n_max=300, seed=1)
    c = data.target_frame(cgcnn, "log10_G_VRH", n_max=300, seed=2)
    assert len(a) == 300 and a["log10_G_VRH"].notna().all()
    assert a["material_id"].tolist() == b["material_id"].tolist() != c["material_id"].tolist()
    assert a.attrs["content_hash"] == b.attrs["content_hash"] != c.attrs["content_hash"]
    assert a.attrs["dataset_hash"] == cgcnn.attrs["content_hash"]
    assert list(a.index) == list(range(300))
    full = data.target_frame(cgcnn, "efermi")
    assert len(full) == 36_735
    with pytest.raises(KeyError, match="no target column"):
        data.target_frame(cgcnn, "K_VRH")


@pytest.mark.slow
def test_table2(cgcnn):
    t = data.target_table(cgcnn).set_index("column")
    assert t.loc["poisson_ratio", "instances"] == 3_188 and t.loc["poisson_ratio", "dropped"] == 3
    assert t.loc["log10_K_VRH", "unit"] == "log10(GPa)"
    assert t.loc["energy_per_atom", "note"].startswith("From the MP summary API of 2024")


# ----------------------------------------------------------------------------------------------
# targets and splits
# ----------------------------------------------------------------------------------------------


def _two_functionals(n_pbe: int, n_scan: int, seed: int = 0):
    """Compositions over 40 elements, energies from two sets of elemental references (PBE, r2SCAN-like)."""
    rng = np.random.default_rng(seed)
    elems = np.array([3, 8, 14] + [z for z in range(11, 60) if z != 14][:37])
    pbe = {int(z): rng.uniform(-9, -1) for z in elems} | data.PBE_REFERENCES
    scan = {z: v - rng.uniform(0.5, 3.4) for z, v in pbe.items()}  # MP 2024: Li -0.48, O -1.01, Si -3.35
    numbers, energy, formation = [], [], []
    for k in range(n_pbe + n_scan):
        z = rng.choice(elems, size=rng.integers(1, 5), replace=False)
        nums = np.repeat(z, rng.integers(1, 5, size=len(z)))
        ef = rng.uniform(-3, 0.5)
        refs = pbe if k < n_pbe else scan
        numbers.append(nums)
        formation.append(ef)
        energy.append(ef + np.mean([refs[int(a)] for a in nums]))
    return numbers, np.array(energy), np.array(formation)


def test_energy_scale_keeps_exactly_the_pbe_family():
    numbers, e, ef = _two_functionals(2800, 1200)  # 70:30, as PBE:r2SCAN in MP 2024
    e[5] = np.nan  # a missing value is neither kept nor flagged
    res = data.energy_scale(numbers, e, ef)
    assert res.checked
    expect = np.arange(len(e)) < 2800
    expect[5] = True
    assert (res.on_scale == expect).all()
    assert res.references[8] == pytest.approx(-4.952, abs=1e-9)
    assert np.abs(res.residual[~expect]).min() > 0.1
    # a 0.2 eV/atom error in one PBE value is caught
    e[10] += 0.2
    assert not data.energy_scale(numbers, e, ef).on_scale[10]


def test_energy_scale_refuses_to_guess():
    numbers, e, ef = _two_functionals(100, 100)
    few = data.energy_scale(numbers, e, ef)  # 200 rows: too few to fit 40 references with confidence
    assert not few.checked and few.on_scale.all() and "< 500" in few.note
    for n_pbe, n_scan in ((0, 3000), (1200, 2800)):  # no PBE family, or r2SCAN dominant: flag nothing
        numbers, e, ef = _two_functionals(n_pbe, n_scan)
        res = data.energy_scale(numbers, e, ef)
        assert not res.checked and res.on_scale.all() and "not PBE" in res.note


def test_targets_table():
    assert {c: t.unit for c, t in data.TARGETS.items()} == {
        "formation_energy_per_atom": "eV/atom",
        "energy_per_atom": "eV/atom",
        "efermi": "eV",
        "band_gap": "eV",
        "log10_K_VRH": "log10(GPa)",
        "log10_G_VRH": "log10(GPa)",
        "poisson_ratio": "–",
    }
    assert "0.026 eV/atom" in data.TARGETS["energy_per_atom"].note
    assert set(data.DATASET_TARGETS["megnet"]) == {
        "formation_energy_per_atom",
        "band_gap",
        "log10_K_VRH",
        "log10_G_VRH",
    }


def test_split_is_deterministic_disjoint_and_covering():
    s1, s2 = data.split(1000, seed=3), data.split(1000, seed=3)
    assert {k: len(v) for k, v in s1.items()} == {"train": 800, "val": 100, "test": 100}
    assert all(np.array_equal(s1[k], s2[k]) for k in s1)
    joined = np.concatenate(list(s1.values()))
    assert len(np.unique(joined)) == 1000 and joined.min() == 0 and joined.max() == 999
    assert not np.array_equal(data.split(1000, seed=4)["test"], s1["test"])
    two = data.split(pd.DataFrame({"x": range(37)}), seed=0, fractions=(0.8, 0.2))
    assert set(two) == {"train", "test"} and (len(two["train"]), len(two["test"])) == (30, 7)
    assert np.intersect1d(two["train"], two["test"]).size == 0
    odd = data.split(36_737, seed=0)
    assert (len(odd["train"]), len(odd["val"]), len(odd["test"])) == (29_391, 3_673, 3_673)
    with pytest.raises(ValueError, match="summing to 1"):
        data.split(10, 0, (0.5, 0.2, 0.2))


# ----------------------------------------------------------------------------------------------
# folder source (a CGCNN-format folder), bad input
# ----------------------------------------------------------------------------------------------


def _nacl() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _si() -> Structure:
    return Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])


def test_folder_round_trip_and_bad_input(tmp_path):
    folder = tmp_path / "cgcnn_folder"
    folder.mkdir()
    (folder / "nacl.cif").write_text(str(CifWriter(_nacl())))
    (folder / "si.cif").write_text(str(CifWriter(_si())))
    (folder / "garbage.cif").write_text("data_broken\n_cell_length_a 5.0\nthis is not CIF\n")
    disordered = Structure(Lattice.cubic(3.6), [{"Fe": 0.5, "Ni": 0.5}], [[0, 0, 0]])
    (folder / "alloy.cif").write_text(str(CifWriter(disordered)))
    (folder / "nogap.cif").write_text(str(CifWriter(_si())))
    (folder / "id_prop.csv").write_text(
        "nacl,5.0\nsi,0.61\ngarbage,1.0\nalloy,0.0\nlost,2.0\nnogap,\nnacl,7.0\nbadval,abc\n"
    )
    df = data.load_dataset(
        "toy",
        source="folder",
        path=folder,
        target="band_gap",
        cache_dir=tmp_path / "proc",
        progress=False,
        verbose=False,
    )
    assert df["material_id"].tolist() == ["nacl", "si"]
    assert df["band_gap"].tolist() == [5.0, 0.61]  # the first of the duplicated nacl rows
    assert df["structure"][0].equals(
        Crystal.from_structure(Structure.from_str(str(CifWriter(_nacl())), "cif")), atol=STRUCTURE_ATOL
    )
    assert len(df["structure"][1]) == 8 and df["structure"][1].volume == pytest.approx(5.43**3)
    assert df[["formation_energy_per_atom", "log10_K_VRH"]].isna().all().all()
    rej = df.attrs["rejected"].set_index("material_id")
    assert rej.loc["garbage", "reason"] == "unparseable CIF"
    assert rej.loc["alloy", "reason"] == "partial occupancy"
    assert rej.loc["lost", "reason"] == "no structure"
    assert rej.loc["nogap", "reason"] == "missing target value" and rej.loc["nogap", "target"] == "band_gap"
    assert rej.loc["nacl", "reason"] == "duplicated id"
    assert rej.loc["badval", "reason"] == "bad target value"
    assert sum(df.attrs["drops"].values()) == 6
    with pytest.raises(ValueError, match="target="):
        data.load_dataset("toy", source="folder", path=folder, cache=False, verbose=False)


# ----------------------------------------------------------------------------------------------
# snapshots (export + mirror source) and the cache
# ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_export_snapshot_round_trip_and_cache_invalidation(cgcnn, tmp_path):
    rng = np.random.default_rng(0)
    rows = np.concatenate([rng.choice(36_737, 30, replace=False), np.arange(36_737, 36_744)])
    sub = cgcnn.iloc[np.sort(rows)].reset_index(drop=True)
    sub = pd.concat([sub, cgcnn[cgcnn["poisson_ratio"].notna()].iloc[:5]], ignore_index=True)
    sub = sub.drop_duplicates("material_id").reset_index(drop=True)
    path = data.export_snapshot(sub, tmp_path / "lab_snapshot.jsonl.xz")
    with lzma.open(path, "rt") as fh:
        first = json.loads(fh.readline())
    assert {
        "material_id",
        "cif",
        "crystal",
        "formation_energy_per_atom",
        "log10_K_VRH",
        "source",
        "retrieved",
    } <= set(first)
    assert first["material_id"] == sub["material_id"][0]
    back = data.load_dataset(
        "lab", source="mirror", mirror=path, cache_dir=tmp_path / "proc", progress=False, verbose=False
    )
    pd.testing.assert_frame_equal(back.drop(columns="structure"), sub.drop(columns="structure"))
    assert all(a.equals(b) for a, b in zip(back["structure"], sub["structure"], strict=True))
    assert back.attrs["content_hash"] == data.content_hash(sub)
    # the portable CIF alone gives the same structure up to its 8 decimals
    assert np.isclose(parse_cif(first["cif"]).volume, sub["structure"][0].volume, rtol=1e-7)

    # a changed source file is never read from a stale cache
    lines = lzma.open(path, "rt").read().splitlines()
    rec = json.loads(lines[0])
    rec["formation_energy_per_atom"] = 1.25
    lines[0] = json.dumps(rec)
    with lzma.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    changed = data.load_dataset(
        "lab", source="mirror", mirror=path, cache_dir=tmp_path / "proc", progress=False, verbose=False
    )
    assert changed["formation_energy_per_atom"][0] == 1.25
    assert changed.attrs["content_hash"] != back.attrs["content_hash"]
    assert len(list((tmp_path / "proc").glob("lab-mirror-*.parquet"))) == 1  # the stale table is gone


# ----------------------------------------------------------------------------------------------
# MP API source: mp-api's MPRester patched at the client level, real-shaped summary documents
# ----------------------------------------------------------------------------------------------


class _FakeSummary:
    def __init__(self, docs: dict, fail_on_call: int | None):
        self.docs, self.fail_on_call, self.calls = docs, fail_on_call, []

    def search(self, material_ids=None, fields=None, **kwargs):
        self.calls.append(list(material_ids))
        assert set(fields) >= {"structure", "bulk_modulus", "shear_modulus", "homogeneous_poisson", "efermi"}
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise ConnectionError("simulated network failure")
        return [{k: self.docs[m].get(k) for k in fields} for m in material_ids if m in self.docs]


def _patch_mprester(monkeypatch, docs, fail_on_call=None, refuse=False):
    import mp_api.client

    summary = _FakeSummary(docs, fail_on_call)
    made = []

    class FakeMPRester:
        def __init__(self, api_key=None, **kwargs):
            if refuse:
                raise ConnectionError("api.materialsproject.org unreachable")
            made.append((api_key, kwargs))
            self.materials = type("M", (), {"summary": summary})()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(mp_api.client, "MPRester", FakeMPRester)
    return summary, made


def test_mp_source_resumes_after_a_failure(monkeypatch, tmp_path, mirror):
    fixture = json.loads((FIXTURES / "mp_summary_docs.json").read_text())
    docs = {d["material_id"]: d for d in fixture["docs"]}
    ids = [*docs, "mp-99999999"]  # the last one is unknown to MP: it comes back as rejected
    monkeypatch.setenv("MP_API_KEY", "test-key")
    kw = dict(
        source="mp",
        ids=ids,
        chunk_size=2,
        raw_dir=tmp_path / "raw",
        cache_dir=tmp_path / "proc",
        progress=False,
        verbose=False,
    )

    summary, made = _patch_mprester(monkeypatch, docs, fail_on_call=2)
    with pytest.raises(
        data.FetchError, match=r"chunk 2/4 \(mp-101 \.\.\. mp-554089\).*run the same call again"
    ):
        data.load_dataset("cgcnn", **kw)
    assert summary.calls == [["mp-10000", "mp-10015"], ["mp-101", "mp-554089"]]
    assert len(list((tmp_path / "raw" / "mp" / "cgcnn").glob("chunk-*.json.gz"))) == 1
    assert made[0][0] == "test-key" and made[0][1]["use_document_model"] is False

    summary, made = _patch_mprester(monkeypatch, docs)
    df = data.load_dataset("cgcnn", **kw)
    assert summary.calls == [
        ["mp-101", "mp-554089"],
        ["mp-1", "mp-1000"],
        ["mp-99999999"],
    ]  # only the missing

    assert df["material_id"].tolist() == list(docs)
    row = df.set_index("material_id").loc["mp-10000"]
    # np.log10 in the table vs math.log10 here: two code paths, equal to a few ulp
    assert row["log10_K_VRH"] == pytest.approx(math.log10(131.0), rel=1e-12)
    assert row["log10_G_VRH"] == pytest.approx(math.log10(74.0), rel=1e-12)
    assert row["poisson_ratio"] == 0.26 and row["energy_per_atom"] == -33.95035526
    assert row["formation_energy_per_atom"] == docs["mp-10000"]["formation_energy_per_atom"]
    with lzma.open(mirror / "mp_elastic_cgcnn_2020.jsonl.xz", "rt") as fh:
        cif = json.loads(fh.readline())["cif"]
    # pymatgen's as_dict (the fixture, written on another machine) vs our CIF parse: two code paths,
    # which agree to far below any physical meaning (STRUCTURE_ATOL), not bit for bit on every CPU
    assert row["structure"].equals(parse_cif(cif), atol=STRUCTURE_ATOL)
    assert np.isnan(df.set_index("material_id").loc["mp-554089", "poisson_ratio"])  # -0.06 dropped
    assert df.attrs["drops"] == {"not returned by the MP API": 1, "poisson_ratio: outside [0, 0.5]": 1}
    assert df["source"].eq("mp-api").all()

    # everything is on disk now: a third call needs no client at all
    summary, made = _patch_mprester(monkeypatch, docs, refuse=True)
    again = data.load_dataset("cgcnn", **dict(kw, cache=False))
    assert again.attrs["content_hash"] == df.attrs["content_hash"] and summary.calls == []


def test_mp_source_without_key_or_network(monkeypatch, tmp_path):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    kw = dict(source="mp", ids=["mp-1"], raw_dir=tmp_path / "raw", cache_dir=tmp_path / "proc", verbose=False)
    with pytest.raises(data.DataUnavailable, match="MP_API_KEY"):
        data.load_dataset("cgcnn", **kw)
    _patch_mprester(monkeypatch, {}, refuse=True)
    with pytest.raises(data.DataUnavailable, match="cannot reach the Materials Project API.*unreachable"):
        data.load_dataset("cgcnn", api_key="k", **kw)


def test_auto_without_any_source_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    monkeypatch.setattr(paths, "default_mirror", lambda: None)
    with pytest.raises(data.DataUnavailable) as err:
        data.load_dataset("cgcnn", raw_dir=tmp_path, cache_dir=tmp_path, verbose=False)
    msg = str(err.value)
    assert "COMPENDIUM_MIRROR" in msg and "MP_API_KEY" in msg and "source='folder'" in msg


# ----------------------------------------------------------------------------------------------
# OPTIMADE source: a local HTTP server with spec-shaped pages for two providers
# ----------------------------------------------------------------------------------------------


@pytest.fixture()
def optimade_server():
    pages = json.loads((FIXTURES / "optimade_pages.json").read_text())
    seen: list[tuple[str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            url = urlparse(self.path)
            query = parse_qs(url.query)
            seen.append((url.path, query))
            provider = url.path.strip("/").split("/")[0]
            if provider not in ("oqmd", "nomad") or not url.path.endswith("/v1/structures"):
                self.send_response(404)
                self.end_headers()
                return
            page = pages[provider][1 if "page_offset" in query else 0]
            body = json.dumps(page).replace("{base}", base).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.api+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base, seen
    server.shutdown()
    server.server_close()


def test_optimade_source_maps_names_and_units(optimade_server, tmp_path):
    base, seen = optimade_server
    providers = {"oqmd": f"{base}/oqmd", "nomad": f"{base}/nomad"}
    kw = dict(
        source="optimade",
        optimade_filter='elements HAS ANY "Na","Si","Li","Fe"',
        providers=providers,
        raw_dir=tmp_path / "raw",
        cache_dir=tmp_path / "proc",
        progress=False,
        verbose=False,
    )
    df = data.load_dataset("optimade-toy", **kw).set_index("material_id")

    assert len(seen) == 4  # two pages per provider, following links.next (a URL, then a links object)
    first_query = seen[0][1]
    assert first_query["filter"] == ['elements HAS ANY "Na","Si","Li","Fe"']
    assert "_oqmd_delta_e" in first_query["response_fields"][0]
    nomad_query = next(q for p, q in seen if p.startswith("/nomad") and "filter" in q)
    assert "_nmd_results_properties_mechanical_bulk_modulus_value" in nomad_query["response_fields"][0]

    assert sorted(df.index) == ["nomad:nmdA", "nomad:nmdB", "oqmd:1215", "oqmd:4061139"]
    # OQMD: eV/atom and eV, as they are
    assert df.loc["oqmd:4061139", "formation_energy_per_atom"] == -1.873
    assert df.loc["oqmd:4061139", "band_gap"] == 5.0
    assert df.loc["oqmd:1215", "energy_above_hull"] == -0.002
    # NOMAD: J -> eV (smallest gap of the spin channels), Pa -> log10(GPa) of the VRH entry
    assert df.loc["nomad:nmdA", "band_gap"] == pytest.approx(7.5, rel=1e-12)
    assert df.loc["nomad:nmdB", "band_gap"] == pytest.approx(0.61, rel=1e-12)
    assert df.loc["nomad:nmdA", "log10_K_VRH"] == pytest.approx(math.log10(75.0), rel=1e-12)
    assert df.loc["nomad:nmdA", "log10_G_VRH"] == pytest.approx(math.log10(60.0), rel=1e-12)
    assert np.isnan(df.loc["nomad:nmdB", "log10_K_VRH"])
    drops = df.attrs["drops"]
    assert drops == {"partial occupancy": 1, "log10_K_VRH: non-positive modulus": 1}
    assert df.attrs["rejected"].set_index("material_id").loc["oqmd:99", "reason"] == "partial occupancy"
    # structures from lattice_vectors + cartesian_site_positions
    li2o = df.loc["nomad:nmdA", "structure"]
    assert len(li2o) == 12 and li2o.volume == pytest.approx(4.62**3)
    assert np.allclose(li2o.frac_coords[8], [0, 0, 0], atol=1e-12)
    assert df.loc["oqmd:4061139", "structure"].numbers.tolist() == [11, 17]

    # pages are saved: a rebuild reads them from disk, no request goes out
    n = len(seen)
    again = data.load_dataset("optimade-toy", **dict(kw, cache=False))
    assert len(seen) == n and again.attrs["content_hash"] == df.attrs["content_hash"]


# ----------------------------------------------------------------------------------------------
# MEGNet's public JSON file
# ----------------------------------------------------------------------------------------------


def _megnet_rows(mirror, n_elastic=3) -> list[dict]:
    rows = []
    with lzma.open(mirror / "mp_elastic_cgcnn_2020.jsonl.xz", "rt") as fh:
        for _ in range(n_elastic):
            d = json.loads(fh.readline())
            rows.append(
                {
                    "material_id": d["material_id"],
                    "structure": d["cif"],
                    "formation_energy_per_atom": -1.0,
                    "band_gap": 0.5,
                    "K_VRH": math.log10(d["K_VRH"]),
                    "G_VRH": math.log10(d["G_VRH"]),
                }
            )
    with lzma.open(mirror / "mp_cgcnn_2020.jsonl.xz", "rt") as fh:
        d = json.loads(fh.readline())
    rows.append(
        {
            "material_id": d["material_id"],
            "structure": d["cif"],
            "formation_energy_per_atom": d["formation_energy_per_atom"],
            "band_gap": d["band_gap"],
            "K_VRH": None,
            "G_VRH": None,
        }
    )
    return rows


def test_megnet_offline_message(tmp_path):
    with pytest.raises(data.DataUnavailable) as err:
        data.load_dataset(
            "megnet", download=False, raw_dir=tmp_path / "raw", cache_dir=tmp_path, verbose=False
        )
    msg = str(err.value)
    assert data.MEGNET_URL in msg and str(tmp_path / "raw" / "megnet" / "mp.2018.6.1.json.zip") in msg


def test_megnet_json_file(tmp_path, mirror):
    rows = _megnet_rows(mirror)
    raw = tmp_path / "raw" / "megnet"
    raw.mkdir(parents=True)
    with zipfile.ZipFile(raw / "mp.2018.6.1.json.zip", "w") as zf:
        zf.writestr("mp.2018.6.1.json", json.dumps(rows))
    df = data.load_dataset(
        "megnet",
        download=False,
        raw_dir=tmp_path / "raw",
        cache_dir=tmp_path / "proc",
        progress=False,
        verbose=False,
    )
    assert df["material_id"].tolist() == [r["material_id"] for r in rows]
    assert df["log10_K_VRH"].iloc[:3].tolist() == [r["K_VRH"] for r in rows[:3]]  # already log10(GPa)
    assert np.isnan(df["log10_K_VRH"].iloc[3]) and df["band_gap"].iloc[3] == rows[3]["band_gap"]
    assert df["source"].eq("figshare:mp.2018.6.1.json").all()
    # a file whose moduli are in GPa is recognised and logged, with the drops counted
    gpa = [
        dict(
            r, K_VRH=10 ** r["K_VRH"] if r["K_VRH"] else None, G_VRH=10 ** r["G_VRH"] if r["G_VRH"] else None
        )
        for r in rows
    ]
    gpa[0]["G_VRH"] = 0.0
    (tmp_path / "gpa.json").write_text(json.dumps(gpa))
    df2 = data.load_dataset(
        "megnet", source="figshare", path=tmp_path / "gpa.json", cache=False, verbose=False
    )
    assert df2["log10_K_VRH"].iloc[:3].to_numpy() == pytest.approx(df["log10_K_VRH"].iloc[:3].to_numpy())
    assert df2.attrs["drops"] == {"log10_G_VRH: non-positive modulus": 1}
    assert any("looked like GPa" in n for n in df2.attrs["notes"])
