"""The model table (lib.models): one row per model, read by the sweep, the stale-record check, the benchmark
and lib.train; a new model is one row (docs/code.md, "Adding a model")."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lib import benchmark as bm
from lib import models
from lib import sweep as sw
from lib.models.registry import register
from lib.train import fit, seed_everything


@register
class ToyNet(nn.Module):
    """A linear model on dense rows: the smallest thing lib.train.fit can train."""

    def __init__(self, n_in: int = 3):
        super().__init__()
        self.init_kwargs = {"n_in": n_in}
        self.lin = nn.Linear(n_in, 1)

    def forward(self, x):
        return self.lin(x).squeeze(1)


class Rows:
    def __init__(self, X):
        self.X = torch.as_tensor(X, dtype=torch.float32)

    def batch(self, idx):
        return self.X[torch.as_tensor(idx)]


@pytest.fixture
def toy():
    info = models.register_model(models.ModelInfo(
        "toy", "Toy", "09_toy", "09", "tests.test_models_table", "ToyNet", "soap", rows="n_soap_max",
        seeds="seeds_soap", color="#000000"))
    yield info
    models.MODEL_TABLE.pop("toy")


def test_the_four_models_of_the_thesis():
    assert list(models.MODEL_TABLE) == ["cgcnn", "megnet", "soap_svr", "soap_mlp"]
    assert models.get("cgcnn").run_name("band_gap", "quick", 2) == "cgcnn_band_gap_quick_s2"
    assert models.get("megnet").record_name("megnet") == "megnet_mp2018"
    assert models.get("megnet_mp2018").name == "megnet" and models.for_class("SoapMLP").name == "soap_mlp"
    assert models.get("soap_svr").n_rows("quick") == 4000 and models.get("cgcnn").n_rows("thesis") is None
    assert models.get("soap_mlp").seeds_of("thesis") == (0, 1) and models.get("megnet").graph_kind == "megnet"
    assert models.get("soap_svr").graph_kind is None
    with pytest.raises(KeyError, match="unknown model 'gcn'"):
        models.get("gcn")


def test_a_new_model_is_one_row(toy, tmp_path):
    # the sweep plans it (its own stage, beside the other models), by name or stage
    runs = sw.plan("smoke", only="toy", properties=["band_gap", "efermi"], root=tmp_path)
    assert [r.name for r in runs] == ["09_toy_band_gap_smoke_s0", "09_toy_efermi_smoke_s0"]
    r = runs[0]
    assert (r.model, r.notebook) == ("toy", "notebooks/09_toy.ipynb")
    assert r.record == "results/runs/toy_band_gap_smoke_s0.json"
    assert r.needs == ("01_fetch_smoke",) and r.phase == sw.plan("smoke", only="03")[0].phase
    assert sw.stage_notebooks()["09"] == "09_toy"
    s = sw.sweep(runs, root=tmp_path, dry_run=True, progress=False)
    assert [x.status for x in s.results] == ["missing", "missing"]  # no notebook yet: said, not failed
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "09_toy.ipynb").write_text("{}")
    s = sw.sweep(runs, root=tmp_path, dry_run=True, progress=False)
    assert [x.status for x in s.results] == ["planned", "planned"]

    # lib.train names its record after the row of its class
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = X @ np.array([1.0, -1.0, 2.0])
    seed_everything(0)
    split = {"train": np.arange(30), "val": np.arange(30, 35), "test": np.arange(35, 40)}
    rec = fit(ToyNet(), Rows(X), y, split, property="band_gap", profile="smoke", epochs=20, lr=0.05,
              batch_size=10, runs_dir=tmp_path / "runs", progress=False)
    assert rec["run"] == "toy_band_gap_smoke_s0" and rec["model"] == "toy" and rec["unit"] == "eV"
    assert rec["test_mae"] < 0.5 * np.abs(y[35:] - y[:30].mean()).mean()  # it learnt something

    # the benchmark puts it in the table's order, with its display name, and misses it where absent
    other = dict(rec, run="cgcnn_band_gap_smoke_s0", model="cgcnn")
    t = bm.table6(bm.runs_frame(records=[rec, other], profile="smoke"))
    assert list(t.index) == [("band_gap", "cgcnn"), ("band_gap", "toy")]
    assert "Toy" in bm.to_markdown(t)
    assert ("efermi", "toy") in bm.missing_cells(t)
