"""lib.data.sources.mp_electrodes: MP's insertion-electrode documents through a patched mp-api client
(no network).

The fixture documents are emmet-core's own InsertionElectrodeDoc on mirror structures, serialised as the API
serialises them (tests/fixtures/make_mp_electrode_docs.py), so ids come in MP's alphabetical form."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lib import data
from lib.data.sources import mp_electrodes as M

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def docs() -> dict[str, dict]:
    raw = json.loads((FIXTURES / "mp_electrode_docs.json").read_text())["docs"]
    return {f"{M.legacy_id(d['battery_id'].rsplit('_', 1)[0])}_{d['working_ion']}": d for d in raw}


class _FakeRoute:
    def __init__(self, docs: dict, fail_on_call: int | None):
        self.docs, self.fail_on_call, self.calls, self.timeout = docs, fail_on_call, [], 20

    def search(self, battery_ids=None, fields=None, **kwargs):
        self.calls.append(list(battery_ids))
        assert {"battery_id", "average_voltage", "electrode_object", "id_charge", "id_discharge"} <= set(
            fields
        )
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise ConnectionError("simulated network failure")
        return [{k: self.docs[b].get(k) for k in fields} for b in battery_ids if b in self.docs]


def _patch(monkeypatch, docs, fail_on_call=None, refuse=False):
    import mp_api.client

    route = _FakeRoute(docs, fail_on_call)
    made = []

    class FakeMPRester:
        def __init__(self, api_key=None, **kwargs):
            if refuse:
                raise ConnectionError("api.materialsproject.org unreachable")
            made.append((api_key, kwargs))
            self.materials = type("Materials", (), {"insertion_electrodes": route})()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(mp_api.client, "MPRester", FakeMPRester)
    return route, made


def _tmp_files(d: Path) -> list[Path]:
    return [p for p in d.rglob("*") if ".tmp" in p.name]


def test_legacy_ids_agree_with_emmet():
    from emmet.core.mpid import AlphaID

    for n in (0, 1, 25, 26, 149, 19017, 714944, 1222527, 3347529):
        assert M.legacy_id(str(AlphaID(n, prefix="mp", padlen=8))) == f"mp-{n}"
    assert M.legacy_id("mp-19017") == "mp-19017" and M.legacy_id("mvc-5592") == "mvc-5592"
    assert M.legacy_id(None) == "None"


def test_fetch_resumes_after_a_failure_and_reads_structures(monkeypatch, tmp_path, docs, mirror):
    ids = [*docs, "mp-99999999_Li"]  # the last one is unknown to MP
    monkeypatch.setenv("MP_API_KEY", "test-key")
    out = tmp_path / "mp_electrodes"
    route, made = _patch(monkeypatch, docs, fail_on_call=2)
    with pytest.raises(M.FetchError, match=r"chunk 2/2 \(.*mp-99999999_Li\).*1 chunk\(s\) are saved.*resume"):
        M.fetch_electrodes(ids, out_dir=out, chunk_size=2, timeout=7, progress=False)
    assert route.calls == [ids[:2], ids[2:]] and route.timeout == 7
    assert made[0][0] == "test-key" and made[0][1]["use_document_model"] is False
    assert len(list(out.glob("chunk-*.json.gz"))) == 1 and not _tmp_files(tmp_path)

    route, _ = _patch(monkeypatch, docs)
    files = M.fetch_electrodes(ids, out_dir=out, chunk_size=2, progress=False)
    assert route.calls == [ids[2:]]  # only the missing chunk
    t = M.read_electrodes(files)
    assert t.attrs["missing"] == ["mp-99999999_Li"] and len(t) == 3 and (t["problem"] == "").all()
    row = t.set_index("battery_id").loc[ids[0]]
    assert (row["id_charge"], row["id_discharge"], row["ion"]) == ("mp-714944", "mp-19340", "Li")
    assert row["formula_charge"] == "VO2" and row["formula_discharge"] == "LiVO2"
    # the structures and energies are the entries' (here the mirror's, on the formation-energy scale)
    table = data.load_dataset("cgcnn", source="mirror", mirror=mirror, progress=False, verbose=False)
    ref = table.set_index("material_id")
    assert row["discharged"].equals(ref.loc["mp-19340", "structure"], atol=1e-8)
    assert row["energy_discharged"] == pytest.approx(
        ref.loc["mp-19340", "formation_energy_per_atom"], abs=1e-9
    )
    # pymatgen's voltage of the stored electrode object is the document's average_voltage
    np.testing.assert_allclose(t["voltage_recomputed"], t["avg_voltage"], atol=1e-9)
    assert row["avg_voltage"] == pytest.approx(2.949, abs=1e-3)

    route, _ = _patch(monkeypatch, docs, refuse=True)  # everything is on disk: no client is made
    assert M.fetch_electrodes(ids, out_dir=out, chunk_size=2, progress=False) == files


def test_an_interrupted_write_leaves_no_chunk(monkeypatch, tmp_path, docs):
    monkeypatch.setenv("MP_API_KEY", "k")
    out = tmp_path / "raw"
    _patch(monkeypatch, docs)
    real_dump = json.dump

    def dump_then_die(obj, fh, **kw):
        fh.write(json.dumps(obj)[:100])  # half a file
        raise KeyboardInterrupt

    monkeypatch.setattr(M.json, "dump", dump_then_die)
    with pytest.raises(KeyboardInterrupt):
        M.fetch_electrodes(list(docs), out_dir=out, chunk_size=3, progress=False)
    assert not list(out.glob("chunk-*")) and not _tmp_files(tmp_path)
    monkeypatch.setattr(M.json, "dump", real_dump)
    route, _ = _patch(monkeypatch, docs)
    files = M.fetch_electrodes(list(docs), out_dir=out, chunk_size=3, progress=False)
    assert route.calls == [list(docs)] and len(M.read_electrodes(files)) == 3


def test_no_key_no_network_and_bad_documents(monkeypatch, tmp_path, docs):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    with pytest.raises(data.DataUnavailable, match="MP_API_KEY"):
        M.fetch_electrodes(["mp-19340_Li"], out_dir=tmp_path, progress=False)
    _patch(monkeypatch, docs, refuse=True)
    with pytest.raises(data.DataUnavailable, match="cannot reach.*unreachable"):
        M.fetch_electrodes(["mp-19340_Li"], api_key="k", out_dir=tmp_path, progress=False)
    broken = {k: dict(v) for k, v in docs.items()}
    first = next(iter(broken))
    broken[first]["electrode_object"] = None
    _patch(monkeypatch, broken)
    t = M.read_electrodes(
        M.fetch_electrodes(list(broken), api_key="k", out_dir=tmp_path / "b", progress=False)
    )
    assert t.set_index("battery_id").loc[first, "problem"] == "no electrode_object in the document"
    assert (t["problem"] == "").sum() == 2
