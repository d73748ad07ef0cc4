"""The sweep: its plan (which runs, in which order, named how), skipping, failures, threads, and Dask.

The execution tests run a tiny notebook written into tmp_path (a parameters cell, then lib.train.fit
on 60 synthetic rows, which writes a complete run record) instead of the project's heavy notebooks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lib import sweep as sw
from lib.data import TARGETS
from lib.profiles import PROFILES

PROPS = tuple(TARGETS)


# ----------------------------------------------------------------------------- the plan


def _stages(runs):
    return [r.stage for r in runs]


def test_plan_smoke_lists_every_run_in_stage_order():
    runs = sw.plan("smoke")
    names = [r.name for r in runs]
    assert len(names) == len(set(names))
    by = {s: [r for r in runs if r.stage == s] for s in sw.stage_notebooks()}
    # 01, 02 once; 7 CGCNN, 7 MEGNet, 7 x 2 SOAP (one seed); 06 once; XGNN: 2 properties x 2 labellings
    counts = {s: len(v) for s, v in by.items() if v}
    assert counts == {"01": 1, "02": 1, "03": 7, "04": 7, "05": 14, "06": 1, "07": 4, "08": 1}
    # phases in order: 01 < 02 < (03, 04, 05) < 06 < 07
    phase = [r.phase for r in runs]
    assert phase == sorted(phase)
    assert names[:2] == ["01_fetch_smoke", "02_graphs_smoke"]
    assert names[-6] == "06_benchmark_smoke"
    r = next(r for r in runs if r.stage == "08")
    assert (r.name, r.record, r.parameters) == ("08_cathodes_smoke", "results/cathode_candidates_smoke.csv",
                                                {"profile": "smoke"})
    xprops = ("band_gap", "formation_energy_per_atom")
    labs = ("group", "period")
    assert {r.name for r in by["07"]} == {f"07_xgnn_{p}_{lab}_smoke_s0" for p in xprops for lab in labs}
    r = next(r for r in runs if r.name == "03_cgcnn_band_gap_smoke_s0")
    assert r.parameters == {"property": "band_gap", "seed": 0, "profile": "smoke"}
    assert r.notebook == "notebooks/03_cgcnn.ipynb"
    assert r.output == "results/notebooks/03_cgcnn_band_gap_smoke_s0.ipynb"
    assert r.record == "results/runs/cgcnn_band_gap_smoke_s0.json"
    assert r.needs == ("02_graphs_smoke",)
    r = next(r for r in runs if r.name == "04_megnet_poisson_ratio_smoke_s0")
    assert r.record == "results/runs/megnet_poisson_ratio_smoke_s0.json"
    r = next(r for r in runs if r.name == "05_soap_mlp_efermi_smoke_s0")
    assert r.parameters == {"property": "efermi", "seed": 0, "profile": "smoke", "model": "mlp"}
    assert r.record == "results/runs/soap_mlp_efermi_smoke_s0.json" and r.needs == ("01_fetch_smoke",)
    r = next(r for r in runs if r.name == "07_xgnn_band_gap_period_smoke_s0")
    assert r.parameters == {"property": "band_gap", "labelling": "period", "seed": 0, "profile": "smoke"}
    assert r.record == "results/xgnn/band_gap_period_smoke_s0.json"
    assert by["06"][0].record is None and by["01"][0].record is None


def test_plan_thesis_counts_seeds_and_order():
    prof = PROFILES["thesis"]
    runs = sw.plan("thesis")
    n = {s: sum(r.stage == s for r in runs) for s in sw.stage_notebooks()}
    assert n == {"01": 1, "02": 1, "03": 7 * 10, "04": 7 * 10, "05": 7 * 2 * 2, "06": 1, "07": 7 * 2, "08": 1}
    assert sorted({r.parameters["seed"] for r in runs if r.stage == "03"}) == list(prof.seeds_gnn)
    assert sorted({r.parameters["seed"] for r in runs if r.stage == "05"}) == list(prof.seeds_soap)
    assert {r.parameters["seed"] for r in runs if r.stage == "07"} == {0}
    # seed 0 of every property and model comes before any seed 1: an interrupted sweep has n = 1 everywhere
    per = [r for r in runs if r.stage in ("03", "04", "05")]
    first_s1 = next(i for i, r in enumerate(per) if r.parameters["seed"] == 1)
    assert all(r.parameters["seed"] == 0 for r in per[:first_s1]) and first_s1 == 7 * 4
    assert len({r.name for r in runs}) == len(runs) == 1 + 1 + 140 + 28 + 1 + 14 + 1


def test_plan_filters_and_errors():
    runs = sw.plan("quick", only="03,cgcnn,4", properties=["band_gap"], seeds=[5])
    assert [r.name for r in runs] == ["03_cgcnn_band_gap_quick_s5", "04_megnet_band_gap_quick_s5"]
    assert _stages(sw.plan("quick", only=["7"], properties=["efermi"])) == ["07", "07"]
    assert sw.plan("smoke", only=["07"], properties=["efermi"]) == []  # smoke explains 2 properties only
    with pytest.raises(ValueError, match="unknown property"):
        sw.plan("quick", properties=["band_gap", "bandgap"])
    with pytest.raises(ValueError, match="unknown stage"):
        sw.plan("quick", only="09")
    with pytest.raises(ValueError, match="unknown profile"):
        sw.plan("paper")


def _executed_copy(root: Path, run, end_time: str | None = "2026-01-01T00:00:00", exception=None) -> Path:
    """The executed copy papermill leaves of ``run``: finished (an end time), killed (none) or failed."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"start_time": "2026-01-01T00:00:00", "end_time": end_time,
                                "exception": exception}
    out = root / run.output
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    return out


def test_skipping_and_setup_stages_only_when_needed(tmp_path):
    runs = sw.plan("smoke", only="01,02,03,06", properties=["band_gap", "efermi"], root=tmp_path)
    for r in runs:  # every notebook there, so nothing is "missing"
        (tmp_path / r.notebook).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / r.notebook).write_text("{}")
    xgnn = sw.plan("smoke", only="07", properties=["band_gap"], root=tmp_path)  # needs 02, notebook missing
    s = sw.sweep(runs, root=tmp_path, dry_run=True, progress=False)
    assert [r.status for r in s.results] == ["planned"] * 5
    rec = tmp_path / "results/runs/cgcnn_band_gap_smoke_s0.json"
    rec.parent.mkdir(parents=True)
    rec.write_text("{}")
    bg = next(r for r in runs if r.name == "03_cgcnn_band_gap_smoke_s0")
    _executed_copy(tmp_path, bg)
    s = sw.sweep(runs, root=tmp_path, dry_run=True, progress=False)
    assert {r.name: r.status for r in s.results} == {
        "01_fetch_smoke": "planned", "02_graphs_smoke": "planned", "03_cgcnn_band_gap_smoke_s0": "skipped",
        "03_cgcnn_efermi_smoke_s0": "planned", "06_benchmark_smoke": "planned"}
    (tmp_path / "results/runs/cgcnn_efermi_smoke_s0.json").write_text("{}")
    for r in runs:
        if r.stage != "06":
            _executed_copy(tmp_path, r)
    s = sw.sweep(runs + xgnn, root=tmp_path, dry_run=True, progress=False)
    # all per-property runs done: 01 and 02 are not needed (07 would read 02, but it is missing);
    # 06 (reads records) always runs
    assert [r.status for r in s.results] == ["skipped"] * 4 + ["planned", "missing", "missing"]
    assert s.results[0].message == "every run that reads it is done"
    # ... unless their own executed copy is missing: a chapter of the book
    (tmp_path / runs[0].output).unlink()
    s = sw.sweep(runs, root=tmp_path, dry_run=True, progress=False)
    assert [r.status for r in s.results] == ["planned", "skipped", "skipped", "skipped", "planned"]
    assert sw.sweep(runs, root=tmp_path, dry_run=True, force=True, progress=False).counts == {"planned": 5}
    # asked for on their own, 01 and 02 run
    only01 = sw.plan("smoke", only="01", root=tmp_path)
    assert sw.sweep(only01, root=tmp_path, dry_run=True, progress=False).results[0].status == "planned"


def test_a_record_without_its_executed_copy_is_not_done(tmp_path):
    """`make test`'s nbval runs execute the notebooks with their default parameters: they leave the records of
    03/04/05 (formation energy), 07 and 08, and no executed copy. Such a run is not done: `make all` runs it
    again (its notebook finds the finished training), so that every chapter has its executed copy. So is one
    whose copy papermill never finished (killed) or finished with an error; a finished copy is done."""
    runs = sw.plan("smoke", only="03,07,08", properties=["formation_energy_per_atom"], root=tmp_path)
    for r in runs:
        (tmp_path / r.notebook).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / r.notebook).write_text("{}")
        (tmp_path / r.record).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / r.record).write_text("{}")
    said = []
    s = sw.sweep(runs, root=tmp_path, dry_run=True, progress=False, echo=said.append)
    assert s.counts == {"planned": len(runs)} and len(runs) == 4, s.format()
    cg = next(r for r in runs if r.stage == "03")
    res = {r.name: r for r in s.results}[cg.name]
    assert res.message == (f"{cg.record} exists, but not its finished executed copy {cg.output}: "
                           "running it again")
    assert "skipped" not in s.format()
    status = {}
    for case, kw in {"killed": {"end_time": None}, "failed": {"exception": True}, "finished": {}}.items():
        _executed_copy(tmp_path, cg, **kw)
        status[case] = {r.name: r.status for r in sw.sweep(runs, root=tmp_path, dry_run=True,
                                                          progress=False).results}[cg.name]
    assert status == {"killed": "planned", "failed": "planned", "finished": "skipped"}
    (tmp_path / cg.output).write_text('{"cells": [')  # truncated
    assert not sw.executed_copy_done(tmp_path / cg.output)
    assert sw.executed_copy_done(_executed_copy(tmp_path, cg))
    # --force runs them all; an archived record (finished elsewhere, no checkpoint) is done without its copy
    assert sw.sweep(runs, root=tmp_path, dry_run=True, force=True, progress=False).counts == {"planned": 4}
    (tmp_path / cg.output).unlink()
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / Path(cg.record).name).write_text("{}")
    s = sw.sweep(runs, root=tmp_path, dry_run=True, progress=False)
    assert {r.name: r.status for r in s.results}[cg.name] == "skipped"


def test_missing_notebook_is_reported_not_fatal(tmp_path):
    runs = sw.plan("smoke", only="04", properties=["band_gap"], root=tmp_path)
    s = sw.sweep(runs, root=tmp_path, profile="smoke", progress=False)
    assert [r.status for r in s.results] == ["missing"]
    assert s.results[0].message == "notebooks/04_megnet.ipynb not found (not landed yet?)"
    assert s.exit_code == 0 and "04_megnet.ipynb" in s.format()


def test_thread_budget_defaults():
    cores = sw.default_jobs()
    env = sw.run_env(3, "/some/root")
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == env["COMPENDIUM_THREADS"] == "3"
    assert env["COMPENDIUM_ROOT"] == "/some/root" and env["MPLBACKEND"].endswith("backend_inline")
    s = sw.sweep([], progress=False)
    assert (s.jobs, s.threads) == (cores, 1)
    s = sw.sweep([], threads=cores, progress=False)
    assert (s.jobs, s.threads) == (1, cores)


# ----------------------------------------------------------------------------- execution


FAKE_PARAMS = '''property = "band_gap"
seed = 0
profile = "smoke"
fail_on = "efermi"   # this property raises
sleep = 0.0'''

FAKE_BODY = '''import os, time

time.sleep(sleep)
if property == fail_on:
    raise RuntimeError(f"deliberate failure: {property} seed {seed}")

import numpy as np
import torch
from lib.models.soap_mlp import SoapMLP
from lib.train import fit, seed_everything

assert torch.get_num_threads() == int(os.environ["COMPENDIUM_THREADS"]), torch.get_num_threads()


class Dense:
    def __init__(self, X):
        self.X = X

    def batch(self, idx):
        return self.X[torch.as_tensor(idx)]


rng = np.random.default_rng(seed)
X = rng.normal(size=(60, 4)).astype("float32")
y = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.normal(size=60)
split = {"train": np.arange(40), "val": np.arange(40, 50), "test": np.arange(50, 60)}
seed_everything(seed)
record = fit(SoapMLP(4, h_fea_len=8), Dense(torch.from_numpy(X)), y, split, property=property, seed=seed,
             profile=profile, model_name="cgcnn", epochs=3, batch_size=16, lr=0.05, progress=False)'''


def fake_notebook(path: Path) -> Path:
    """A notebook with a papermill parameters cell that trains a tiny model and writes its run record."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(FAKE_PARAMS, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(FAKE_BODY)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def fake_root(tmp_path):
    fake_notebook(tmp_path / "nb" / "fake.ipynb")
    return tmp_path


def test_sweep_on_a_local_dask_cluster(fake_root):
    """2 properties x 2 seeds on 2 Dask worker processes: 4 records; a raising run fails alone; resumes."""
    from dask.distributed import Client, LocalCluster

    from lib import benchmark
    from lib.records import list_records

    root = fake_root
    fake = {"03": root / "nb" / "fake.ipynb"}
    runs = sw.plan("smoke", only="03", properties=["band_gap", "formation_energy_per_atom"], seeds=[0, 1],
                   notebooks=fake, root=root)
    runs += sw.plan("smoke", only="03", properties=["efermi"], notebooks=fake, root=root)  # this one raises
    assert len(runs) == 5 and runs[0].notebook == "nb/fake.ipynb"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        s = sw.sweep(runs, client=client, root=root, profile="smoke", progress=False)
        status = {r.name: r.status for r in s.results}
        assert status == {r.name: ("failed" if "efermi" in r.name else "ok") for r in runs}, s.format()
        assert s.exit_code == 1 and s.executor.startswith("tcp://") and s.threads == 1
        failed = [r for r in s.results if r.status == "failed"]
        assert all("RuntimeError: deliberate failure: efermi" in r.message for r in failed)
        # the failed run keeps its executed notebook, with the error in it
        nb = json.loads((root / failed[0].output).read_text())
        assert any(o.get("ename") == "RuntimeError" for c in nb["cells"] for o in c.get("outputs", []))
        assert "FAILED  03_cgcnn_efermi_smoke_s0" in s.format()
        recs = list_records(root / "results" / "runs")
        assert sorted(r["run"] for r in recs) == sorted(
            f"cgcnn_{p}_smoke_s{k}" for p in ("band_gap", "formation_energy_per_atom") for k in (0, 1))
        assert all(r["device"]["torch_threads"] == 1 for r in recs)
        for r in s.results:
            assert (root / "results" / "notebooks" / f"{r.name}.ipynb").exists()
        # second call: the four done runs are skipped, the failing ones run (and fail) again
        mtimes = {p: p.stat().st_mtime for p in (root / "results" / "runs").glob("*.json")}
        s2 = sw.sweep(runs, client=client, root=root, profile="smoke", progress=False)
        assert s2.counts == {"skipped": 4, "failed": 1}
        assert {p: p.stat().st_mtime for p in (root / "results" / "runs").glob("*.json")} == mtimes
        summary = json.loads((root / "results" / "notebooks" / "sweep_smoke.json").read_text())
        assert summary["counts"] == {"skipped": 4, "failed": 1}
        # the CLI, on the same cluster (what goes to the workers must pickle from `python -m lib.sweep` too)
        fake_notebook(root / "notebooks" / "03_cgcnn.ipynb")
        cli = subprocess.run(
            [sys.executable, "-m", "lib.sweep", "--profile", "smoke", "--only", "03", "--properties",
             "efermi", "band_gap", "--root", str(root), "--dask-scheduler", cluster.scheduler_address,
             "--no-progress"],
            capture_output=True, text=True, timeout=300)
        assert cli.returncode == 1, cli.stdout + cli.stderr
        assert "1 failed, 1 skipped" in cli.stdout and "FAILED  03_cgcnn_efermi_smoke_s0" in cli.stdout
    # the benchmark is built from those records: n = 2 per property
    t = benchmark.table6(benchmark.runs_frame(root / "results" / "runs", profile="smoke"))
    assert sorted(t.index) == [("band_gap", "cgcnn"), ("formation_energy_per_atom", "cgcnn")]
    assert list(t["n"]) == [2, 2]
    assert t["test_mae_std"].notna().all()


def test_local_pool_threads_and_timeout(fake_root):
    """Locally: threads reach the kernel (a lone run gets every core); a run past its timeout is killed."""
    root = fake_root
    runs = sw.plan("smoke", only="03", properties=["band_gap"], notebooks={"03": "nb/fake.ipynb"}, root=root)
    s = sw.sweep(runs, root=root, progress=False)  # default: jobs = cores, 1 thread each; alone: all cores
    cores = sw.default_jobs()
    assert s.counts == {"ok": 1} and (s.jobs, s.threads) == (cores, 1), s.format()
    assert s.results[0].threads == cores
    rec = json.loads((root / "results/runs/cgcnn_band_gap_smoke_s0.json").read_text())
    assert rec["device"]["torch_threads"] == cores and rec["test_mae"] > 0
    # the record without its executed copy (what nbval leaves): run again, training reused, copy written
    out = root / runs[0].output
    mtime = (root / "results/runs/cgcnn_band_gap_smoke_s0.json").stat().st_mtime
    out.unlink()
    said = []
    s = sw.sweep(runs, root=root, progress=False, echo=said.append)
    assert s.counts == {"ok": 1} and sw.executed_copy_done(out), s.format()
    assert (root / "results/runs/cgcnn_band_gap_smoke_s0.json").stat().st_mtime == mtime
    assert any("1 run(s) have a record but no finished executed copy" in line for line in said)
    assert sw.sweep(runs, root=root, progress=False).counts == {"skipped": 1}
    # a failed run blocks the runs that need it (and only those); the sweep exits non-zero
    fetch = sw.Run("01_fetch_smoke", "01", "nb/fake.ipynb", (("property", "efermi"),))  # raises
    after = [sw.Run("needs_it", "03", "nb/fake.ipynb", (), "results/runs/x.json", needs=("01_fetch_smoke",)),
             sw.Run("06_benchmark_smoke", "06", "nb/absent.ipynb", ())]
    s = sw.sweep([fetch, *after], root=root, progress=False)
    assert [r.status for r in s.results] == ["failed", "blocked", "missing"] and s.exit_code == 1
    assert s.results[1].message == "needs 01_fetch_smoke, which failed"
    assert "BLOCKED 1 run: needs 01_fetch_smoke" in s.format()
    # a run that sleeps past the timeout: killed, failed, its process group gone
    slow = sw.Run("slow", "03", "nb/fake.ipynb", (("property", "poisson_ratio"), ("sleep", 120)),
                  record="results/runs/never.json")
    res = sw.execute_run(slow, root, threads=1, timeout=8)
    assert res.status == "failed" and "timed out" in res.message
    assert res.seconds < 40
    assert not sw._LIVE
    log = (root / slow.log).read_text()
    assert "papermill" in log and os.fspath(root) in log


def test_a_record_of_other_data_is_trained_again(tmp_path, mirror):
    from lib import data

    runs = sw.plan("smoke", only="05", properties=["band_gap"], root=tmp_path)
    svr = next(r for r in runs if r.name == "05_soap_svr_band_gap_smoke_s0")
    (tmp_path / svr.notebook).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / svr.notebook).write_text("{}")
    df = data.load_dataset("cgcnn", source="auto", progress=False, verbose=False)
    n = PROFILES["smoke"].n_soap_max
    now = data.target_frame(df, "band_gap", n_max=n, seed=0).attrs["content_hash"]
    rec = {"property": "band_gap", "profile": "smoke", "seed": 0, "dataset": "cgcnn",
           "profile_settings": PROFILES["smoke"].as_dict()}
    path = tmp_path / svr.record
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(rec | {"content_hash": now}))
    _executed_copy(tmp_path, svr)
    assert sw.stale_records([svr], tmp_path) == {}
    status = {r.name: r.status for r in sw.sweep([svr], root=tmp_path, dry_run=True, progress=False).results}
    assert status == {svr.name: "skipped"}
    # the same record from a table whose band gaps differed (another hash): planned again, with the reason
    path.write_text(json.dumps(rec | {"content_hash": "0" * 64}))
    assert "other data" in sw.stale_records([svr], tmp_path)[svr.name]
    res = sw.sweep([svr], root=tmp_path, dry_run=True, progress=False).results[0]
    assert res.status == "planned" and "other data" in res.message
    # records of the MEGNet paper's dataset are not compared with the CGCNN table
    path.write_text(json.dumps(rec | {"content_hash": "0" * 64, "dataset": "megnet"}))
    assert sw.stale_records([svr], tmp_path) == {}


def _images(path: Path) -> int:
    nb = json.loads(path.read_text())
    return sum(1 for c in nb["cells"] for o in c.get("outputs", []) if any(k.startswith("image/")
                                                                          for k in o.get("data", {})))


def test_executed_chapters_show_their_figures(tmp_path, mirror, monkeypatch):
    """`make all` executes the chapters through execute_run: the executed 03 and 06 show their figures inline
    (a reader opens them in JupyterLab), and the figure files are written as well."""
    from lib.paths import ROOT

    (tmp_path / "notebooks").symlink_to(ROOT / "notebooks")
    (tmp_path / "data").symlink_to(ROOT / "data")  # the processed table and graph caches, shared
    monkeypatch.setenv("COMPENDIUM_MIRROR", str(mirror))  # the root is elsewhere: say where the data are
    runs = sw.plan("smoke", only="03,06", properties=["band_gap"], root=tmp_path)
    s = sw.sweep(runs, root=tmp_path, profile="smoke", progress=False)
    assert s.counts == {"ok": 2}, s.format()
    out = tmp_path / "results" / "notebooks"
    assert _images(out / "03_cgcnn_band_gap_smoke_s0.ipynb") >= 2  # parity plot and learning curves
    assert _images(out / "06_benchmark_smoke.ipynb") >= 1  # Figure 14
    assert list((tmp_path / "figures").glob("*.png"))


def test_archived_records_are_restored_not_trained_again(tmp_path):
    """records/ (committed) carries finished runs across machines and sessions: archive copies a profile's
    finished records there, the sweep restores them into results/runs and skips those runs."""
    from lib import records

    runs_dir, archive_dir = tmp_path / "results/runs", tmp_path / "records"
    runs_dir.mkdir(parents=True)
    done = {"run": "cgcnn_band_gap_quick_s0", "model": "cgcnn", "property": "band_gap", "profile": "quick",
            "seed": 0, "test_mae": 0.7}
    (runs_dir / "cgcnn_band_gap_quick_s0.json").write_text(json.dumps(done))
    (runs_dir / "cgcnn_efermi_quick_s0.json").write_text(json.dumps(  # unfinished: no test MAE
        {"run": "cgcnn_efermi_quick_s0", "profile": "quick", "test_mae": None}))
    thesis = done | {"run": "cgcnn_band_gap_thesis_s0", "profile": "thesis"}
    (runs_dir / "cgcnn_band_gap_thesis_s0.json").write_text(json.dumps(thesis))
    (archive_dir).mkdir()  # an older archive's plain JSON of the same run is replaced by the gzipped one
    (archive_dir / "cgcnn_band_gap_quick_s0.json").write_text(json.dumps(done | {"test_mae": 0.9}))
    written = records.archive("quick", runs_dir, archive_dir)
    assert [p.name for p in written] == ["cgcnn_band_gap_quick_s0.json.gz"]
    assert sorted(p.name for p in archive_dir.iterdir()) == ["cgcnn_band_gap_quick_s0.json.gz"]
    assert records.read_record(written[0]) == done
    assert records.archive("quick", runs_dir, archive_dir) == []  # unchanged: nothing rewritten
    (runs_dir / "cgcnn_band_gap_quick_s0.json").write_text(json.dumps(done | {"test_mae": 0.6}))
    assert records.archive("quick", runs_dir, archive_dir) == written  # changed: rewritten
    assert records.read_record(written[0])["test_mae"] == 0.6
    (runs_dir / "cgcnn_band_gap_quick_s0.json").write_text(json.dumps(done))
    assert records.archive("quick", runs_dir, archive_dir) == written
    with pytest.raises(ValueError, match="pipeline"):
        records.archive("smoke", runs_dir, archive_dir)

    # a fresh checkout: no results/, the archive committed
    fresh = tmp_path / "fresh"
    (fresh / "records").mkdir(parents=True)
    (fresh / "records/cgcnn_band_gap_quick_s0.json.gz").write_bytes(written[0].read_bytes())
    # an older archive's plain JSON
    (fresh / "records/cgcnn_poisson_ratio_quick_s0.json").write_text(json.dumps(
        done | {"run": "cgcnn_poisson_ratio_quick_s0", "property": "poisson_ratio"}))
    runs = sw.plan("quick", only="03", properties=["band_gap", "efermi", "poisson_ratio"], seeds=[0],
                   root=fresh)
    for r in runs:
        (fresh / r.notebook).parent.mkdir(parents=True, exist_ok=True)
        (fresh / r.notebook).write_text("{}")
    planned = sw.sweep(runs, root=fresh, dry_run=True, progress=False).results
    dry = {r.name: (r.status, r.message) for r in planned}
    assert dry["03_cgcnn_band_gap_quick_s0"][0] == "skipped"
    assert "archived" in dry["03_cgcnn_band_gap_quick_s0"][1]
    assert dry["03_cgcnn_poisson_ratio_quick_s0"][0] == "skipped"
    assert dry["03_cgcnn_efermi_quick_s0"][0] == "planned"
    assert not (fresh / "results").exists()  # a dry run writes nothing
    said = []
    s = sw.sweep([r for r in runs if "efermi" not in r.name], root=fresh, progress=False, echo=said.append)
    assert [r.status for r in s.results] == ["skipped", "skipped"]
    assert json.loads((fresh / "results/runs/cgcnn_band_gap_quick_s0.json").read_text()) == done
    restored = json.loads((fresh / "results/runs/cgcnn_poisson_ratio_quick_s0.json").read_text())
    assert restored["test_mae"] == 0.7
    assert any("2 run record(s) restored" in line for line in said)
    # a record already in results/runs is never replaced by the archive's
    (fresh / "results/runs/cgcnn_band_gap_quick_s0.json").write_text(json.dumps(done | {"test_mae": 0.5}))
    assert records.restore("quick", fresh / "results/runs", fresh / "records") == []
    assert json.loads((fresh / "results/runs/cgcnn_band_gap_quick_s0.json").read_text())["test_mae"] == 0.5
