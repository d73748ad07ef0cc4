"""The notebook-free runner (lib.sweep.direct) and the electrode benchmark's relaxation order: what a lent GPU's
one prepared call (bench/gpu_session.sh) relies on."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import papermill as pm
import pytest

from lib.cathodes import benchmark as eb
from lib.paths import ROOT
from lib.sweep import direct


@pytest.fixture(scope="module")
def notebook_runs(tmp_path_factory, mirror):
    """03_cgcnn on the smoke profile (its run and the two members of its seed ensemble), as the sweep runs it."""
    root = tmp_path_factory.mktemp("nb")
    (ROOT / "data").mkdir(exist_ok=True)
    (root / "data").symlink_to(ROOT / "data")  # the dataset table and graph caches the other tests build
    mp = pytest.MonkeyPatch()
    mp.setenv("COMPENDIUM_ROOT", str(root))  # its records go here
    mp.setenv("COMPENDIUM_MIRROR", str(mirror))
    try:
        pm.execute_notebook(str(ROOT / "notebooks" / "03_cgcnn.ipynb"), str(root / "03.ipynb"),
                            cwd=str(ROOT / "notebooks"), progress_bar=False,
                            parameters={"property": "formation_energy_per_atom", "profile": "smoke", "seed": 0})
    finally:
        mp.undo()
    return root / "results" / "runs"


def _record(runs, name):
    return json.loads((runs / f"{name}.json").read_text())


def test_direct_runs_are_the_notebooks_runs_and_members_train_apart(notebook_runs, tmp_path):
    """Same rows, split, recipe and names as 03_cgcnn: the same test MAE; a member trained alone (as the GPU
    script trains them, in parallel processes) is the member trained after its run."""
    name = "cgcnn_formation_energy_per_atom_smoke_s0"
    together = direct.train_run("cgcnn", "formation_energy_per_atom", "smoke", 0, runs_dir=tmp_path / "a")
    assert [r["run"] for r in together] == [name, f"{name}_e1", f"{name}_e2"]
    for rec in together:
        nb = _record(notebook_runs, rec["run"])
        assert rec["data_key"] == nb["data_key"]  # the fingerprint of rows, split, model and settings
        assert rec["test_predictions"]["id"] == nb["test_predictions"]["id"] and rec["epochs_run"] == 2
        assert rec["test_mae"] == pytest.approx(nb["test_mae"], rel=1e-3)
    alone = direct.train_run("cgcnn", "formation_energy_per_atom", "smoke", 0, member=2, runs_dir=tmp_path / "b")
    assert [r["run"] for r in alone] == [f"{name}_e2"] and alone[0]["member_of"] == name
    assert alone[0]["test_mae"] == pytest.approx(together[2]["test_mae"], rel=1e-3)
    only = direct.train_run("cgcnn", "formation_energy_per_atom", "smoke", 0, member=0, runs_dir=tmp_path / "c")
    assert [r["run"] for r in only] == [name]
    before = (tmp_path / "c" / f"{name}.json").read_bytes()
    again = direct.train_run("cgcnn", "formation_energy_per_atom", "smoke", 0, member=0,
                             runs_dir=tmp_path / "c")
    assert (tmp_path / "c" / f"{name}.json").read_bytes() == before  # skipped: the record is left as it was
    assert again[0] == _record(tmp_path / "c", name)
    assert again[0]["test_mae"] == pytest.approx(only[0]["test_mae"])


def test_direct_refuses_a_model_that_reads_no_graphs():
    with pytest.raises(ValueError, match="not a graph model"):
        direct.train_run("soap_svr", "band_gap", "smoke", 0)
    with pytest.raises(ValueError, match="model:profile:property"):
        direct.prepare(["cgcnn:smoke"])


def test_benchmark_relaxation_order_puts_li_first_and_shards_cover_it_once():
    ions = ["Na", "Li", "Li", "K", "Li", "Na"]
    matched = pd.DataFrame({"ion": ions, "high_mpid": [f"c{i}" for i in range(6)],
                            "low_mpid": [f"d{i}" for i in range(5)] + ["d0"]})  # d0 shared by two pairs
    matched["charged"] = matched["high_mpid"]
    matched["discharged"] = matched["low_mpid"]
    order = list(eb.benchmark_structures(matched, seed=0))
    li_ids = {f"{e}{i}" for i in (1, 2, 4) for e in "cd"}
    assert set(order[:6]) == li_ids and len(order) == len(set(order)) == 11
    assert order == list(eb.benchmark_structures(matched, seed=0))
    assert order != list(eb.benchmark_structures(matched, seed=1))
    shards = [eb.shard_of(order, (k, 3)) for k in range(3)]
    assert sorted(sum(shards, [])) == sorted(order)
    assert eb.shard_of(order, (0, 1), reverse=True) == order[::-1]
    with pytest.raises(ValueError, match="shard 3/3"):
        eb.shard_of(order, (3, 3))
    assert np.array_equal(eb.shard_of(list(range(10)), (1, 4)), [1, 5, 9])
