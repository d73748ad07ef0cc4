"""lib.train and lib.metrics: metrics on a known vector, run records, checkpoints, exact resume."""

from __future__ import annotations

import functools
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from lib import records
from lib.metrics import accuracy, mae, r2, regression_metrics, rmse
from lib.models.registry import register
from lib.models.cgcnn import CGCNN
from lib.train import Normalizer, TrainConfig, batches, fit, predict_data, seed_everything

PROP = "formation_energy_per_atom"
SMALL = dict(atom_fea_len=16, n_conv=2, h_fea_len=32)  # a small CGCNN: these tests check the loop
FAST = dict(batch_size=8, num_threads=1, progress=False)


@functools.lru_cache(maxsize=1)
def _graphs():
    from lib.data import load_dataset, split, target_frame
    from lib.graphs import build_graphs, cgcnn_params

    table = load_dataset("cgcnn", source="mirror", progress=False, verbose=False)
    frame = target_frame(table, PROP, n_max=40, seed=1)
    gs = build_graphs(frame, cgcnn_params(), cache=False, n_jobs=1, progress=False)
    y = frame[PROP].to_numpy()[gs.source_index]
    return gs, y, split(len(gs), seed=0), frame.attrs["content_hash"]


@pytest.fixture(scope="module")
def data(mirror):
    return _graphs()


# ------------------------------------------------------------------------------------ metrics


def test_metrics_on_a_known_vector():
    y = [1.0, 2.0, 3.0, 4.0]
    p = [1.5, 2.0, 2.0, 5.0]  # errors 0.5, 0, -1, 1
    assert mae(y, p) == pytest.approx(0.625)  # 2.5 / 4
    assert rmse(y, p) == pytest.approx(0.75)  # sqrt((0.25 + 0 + 1 + 1) / 4)
    assert r2(y, p) == pytest.approx(0.55)  # 1 - 2.25 / 5
    assert regression_metrics(y, p) == pytest.approx({"mae": 0.625, "rmse": 0.75, "r2": 0.55, "n": 4})
    assert r2(y, y) == 1.0 and math.isnan(r2([2.0, 2.0], [1.0, 3.0]))
    assert accuracy([0, 1, 1, 0], [0, 1, 0, 0]) == 0.75
    with pytest.raises(ValueError):
        mae([1.0, 2.0], [1.0])


def test_normalizer_and_config():
    n = Normalizer.fit(np.array([1.0, 3.0]))
    assert (n.mean, n.std) == (2.0, 1.0) and n.denorm(n.norm(5.0)) == 5.0
    assert Normalizer.from_dict(n.as_dict()) == n
    cfg = TrainConfig()
    assert (cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay, cfg.batch_size, cfg.epochs,
            cfg.milestones, cfg.loss_name) == ("sgd", 0.01, 0.9, 0.0, 256, 30, (100,), "mse")
    assert cfg.replace(optimizer="adamw", scheduler="cosine").scheduler == "cosine"
    with pytest.raises(TypeError, match="unknown TrainConfig field"):
        cfg.replace(learning_rate=0.1)


def test_batches_never_leave_a_single_crystal():
    b = batches(np.arange(9), 4)
    assert [len(x) for x in b] == [4, 5]
    assert np.array_equal(np.concatenate(b), np.arange(9))


# ------------------------------------------------------------------------------------ fit


def _fit(gs, y, sp, runs_dir, epochs, **kw):
    seed_everything(0)
    model = CGCNN(**SMALL)
    rec = fit(model, gs, y, sp, property=PROP, seed=0, profile="test", runs_dir=runs_dir, epochs=epochs,
              **{**FAST, **kw})
    return model, rec


def test_run_record_and_checkpoint(data, tmp_path):
    gs, y, sp, chash = data
    model, rec = _fit(gs, y, sp, tmp_path, 3, content_hash=chash)
    name = "cgcnn_formation_energy_per_atom_test_s0"
    assert rec["run"] == name
    on_disk = json.loads((tmp_path / f"{name}.json").read_text())
    assert on_disk["test_mae"] == rec["test_mae"]
    for key in ("model", "property", "seed", "profile", "split_sizes", "hparams", "test_mae", "test_rmse",
                "test_r2", "train_time_s", "device", "n_parameters", "parameter_bytes", "epochs_run",
                "curves", "content_hash", "git_commit", "unit"):
        assert key in rec, key
    assert rec["split_sizes"] == {k: len(v) for k, v in sp.items()}
    assert rec["unit"] == "eV/atom" and rec["content_hash"] == chash and rec["epochs_run"] == 3
    assert rec["hparams"]["model"]["atom_fea_len"] == 16 and rec["hparams"]["train"]["lr"] == 0.01
    assert rec["hparams"]["graph"]["max_neighbors"] == 8
    assert rec["device"]["type"] == "cpu" and rec["device"]["torch_threads"] == 1 and rec["device"]["name"]
    assert rec["parameter_bytes"] == 4 * rec["n_parameters"]
    assert len(rec["curves"]["train_mae"]) == len(rec["curves"]["val_mae"]) == 3
    assert torch.get_num_threads() >= 1  # restored after fit
    # the test metrics are those of the best validation epoch's weights, in eV/atom
    best = int(np.argmin(rec["curves"]["val_mae"]))
    assert rec["best_epoch"] == best + 1
    assert rec["metrics"]["val"]["mae"] == pytest.approx(rec["curves"]["val_mae"][best])
    pred = predict_data(model, gs, sp["test"], Normalizer(**rec["normalizer"]))
    assert rec["test_mae"] == pytest.approx(mae(y[sp["test"]], pred))
    # the checkpoint rebuilds the model on the CPU from its class name and arguments
    ck = records.load_checkpoint(tmp_path / f"{name}.pt", device="cpu")
    assert type(ck.model) is CGCNN and ck.unit == "eV/atom" and ck.graph_params["max_neighbors"] == 8
    p2 = predict_data(ck.model, gs, sp["test"], ck.normalizer)
    np.testing.assert_allclose(p2, pred, rtol=0, atol=1e-6)
    frame = records.records_frame(tmp_path)
    assert frame.loc[0, "test_mae"] == rec["test_mae"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_checkpoint_moves_between_cpu_and_cuda(data, tmp_path):
    gs, y, sp, _ = data
    _, rec = _fit(gs, y, sp, tmp_path, 1, device="cpu")
    ck = records.load_checkpoint(tmp_path / f"{rec['run']}.pt", device="cuda")
    assert ck.device.type == "cuda"
    p = predict_data(ck.model, gs, sp["test"], ck.normalizer)
    np.testing.assert_allclose(p, rec["test_predictions"]["y_pred"], atol=1e-4)


def test_resume_gives_the_uninterrupted_result(data, tmp_path):
    gs, y, sp, _ = data
    _, straight = _fit(gs, y, sp, tmp_path / "a", 4)
    # 2 epochs, then the same run asked for 4: goes on from epoch 2
    _fit(gs, y, sp, tmp_path / "b", 2)
    _, extended = _fit(gs, y, sp, tmp_path / "b", 4)
    assert extended["resumed_from_epoch"] == 2
    # interrupted during epoch 3 (after 2 epochs were saved), then run again
    class Stop(Exception):
        pass

    def stop_after_2(epoch, info):
        if epoch == 1:
            raise Stop

    with pytest.raises(Stop):
        _fit(gs, y, sp, tmp_path / "c", 4, callback=stop_after_2)
    assert not (tmp_path / "c" / f"{straight['run']}.json").exists()
    _, resumed = _fit(gs, y, sp, tmp_path / "c", 4)
    assert resumed["resumed_from_epoch"] == 2
    for other in (extended, resumed):
        assert other["curves"]["val_mae"] == straight["curves"]["val_mae"]
        assert other["curves"]["train_mae"] == straight["curves"]["train_mae"]
        for k in ("test_mae", "test_rmse", "test_r2", "best_epoch"):
            assert other[k] == straight[k], k
    # the same seed from scratch repeats itself; another seed does not
    _, again = _fit(gs, y, sp, tmp_path / "d", 4)
    assert again["test_mae"] == straight["test_mae"] and again["resumed_from_epoch"] is None
    seed_everything(1)
    other = fit(CGCNN(**SMALL), gs, y, sp, property=PROP, seed=1, profile="test", runs_dir=tmp_path / "d",
                epochs=4, **FAST)
    assert other["test_mae"] != straight["test_mae"]


def test_a_finished_run_run_again_leaves_its_record_alone(data, tmp_path):
    """Running a finished run again (as the CPU queue does to skip it) returns its record unchanged and leaves
    the file alone (its provenance: commit, time, wall time), with the best weights in the model; a deleted
    record is written again from the saved state."""
    gs, y, sp, _ = data
    model, first = _fit(gs, y, sp, tmp_path, 3)
    path = tmp_path / f"{first['run']}.json"
    before = path.read_bytes()
    model2, again = _fit(gs, y, sp, tmp_path, 3)
    assert path.read_bytes() == before and again == json.loads(before) and again["resumed_from_epoch"] is None
    assert again["test_mae"] == first["test_mae"] and again["created"] == first["created"]
    p1 = predict_data(model, gs, sp["test"], Normalizer(**first["normalizer"]))
    p2 = predict_data(model2, gs, sp["test"], Normalizer(**first["normalizer"]))
    np.testing.assert_allclose(p2, p1, rtol=0, atol=1e-6)
    path.unlink()
    _, rewritten = _fit(gs, y, sp, tmp_path, 3)
    assert rewritten["resumed_from_epoch"] == 3 and rewritten["test_mae"] == pytest.approx(first["test_mae"])
    assert path.exists()


def test_parked_trainings_carry_over_to_a_fresh_checkout(data, tmp_path):
    """A working session's checkout may be new: records.park keeps a profile's unfinished states and finished
    checkpoints in the committed archive, records.restore puts them back, and there the unfinished run
    resumes (the same result as uninterrupted) while the finished one is not trained again."""
    gs, y, sp, _ = data
    old, new, arch = tmp_path / "old", tmp_path / "new", tmp_path / "records"
    _, finished = _fit(gs, y, sp, old, 3)
    seed_everything(1)
    fit(CGCNN(**SMALL), gs, y, sp, property=PROP, seed=1, profile="test", runs_dir=old, epochs=2, **FAST)
    (old / "cgcnn_formation_energy_per_atom_test_s1.json").unlink()  # as if stopped after 2 of 4 epochs
    (old / "cgcnn_formation_energy_per_atom_test_s1.pt").unlink()
    parked = records.park("test", old, arch)
    assert sorted(p.name for p in parked) == ["cgcnn_formation_energy_per_atom_test_s0.pt",
                                              "cgcnn_formation_energy_per_atom_test_s1.state.pt"]
    assert records.park("test", old, arch) == []  # unchanged: nothing rewritten
    with pytest.raises(ValueError, match="pipeline"):
        records.park("smoke", old, arch)
    records.archive("test", old, arch)
    restored = records.restore("test", new, arch)
    assert sorted(p.name for p in restored) == sorted(
        [p.name for p in parked] + ["cgcnn_formation_energy_per_atom_test_s0.json"])
    before = (new / f"{finished['run']}.json").read_bytes()
    _, again = _fit(gs, y, sp, new, 3)  # no state: record and checkpoint say it is done
    assert (new / f"{finished['run']}.json").read_bytes() == before
    assert again["test_mae"] == finished["test_mae"]
    seed_everything(1)
    resumed = fit(CGCNN(**SMALL), gs, y, sp, property=PROP, seed=1, profile="test", runs_dir=new, epochs=4,
                  **FAST)
    seed_everything(1)
    straight = fit(CGCNN(**SMALL), gs, y, sp, property=PROP, seed=1, profile="test", runs_dir=tmp_path / "s",
                   epochs=4, **FAST)
    assert resumed["resumed_from_epoch"] == 2 and resumed["test_mae"] == straight["test_mae"]
    # once finished, parking it again swaps its parked state for its checkpoint
    assert [p.name for p in records.park("test", new, arch)] == ["cgcnn_formation_energy_per_atom_test_s1.pt"]
    assert sorted(records.parked(arch)) == [finished["run"], "cgcnn_formation_energy_per_atom_test_s1"]
    assert not (arch / "parked/cgcnn_formation_energy_per_atom_test_s1.state.pt").exists()


def test_changed_settings_do_not_resume(data, tmp_path):
    gs, y, sp, _ = data
    _fit(gs, y, sp, tmp_path, 2)
    with pytest.warns(UserWarning, match="other data or settings"):
        _, rec = _fit(gs, y, sp, tmp_path, 2, lr=0.02)
    assert rec["resumed_from_epoch"] is None


def test_overrides_optimizer_scheduler_loss(data, tmp_path):
    gs, y, sp, _ = data
    _, rec = _fit(gs, y, sp, tmp_path, 3, optimizer="adamw", lr=1e-3, weight_decay=1e-4, scheduler="cosine",
                  loss="l1")
    assert rec["hparams"]["train"]["optimizer"] == "adamw" and rec["hparams"]["train"]["loss"] == "l1"
    assert rec["curves"]["lr"][0] == 1e-3 and rec["curves"]["lr"][2] < 1e-3  # cosine decays
    with pytest.raises(ValueError, match="unknown optimizer"):
        _fit(gs, y, sp, tmp_path, 1, optimizer="lbfgs2")


def test_missing_targets_are_refused(data, tmp_path):
    gs, y, sp, _ = data
    y = y.copy()
    y[sp["val"][0]] = np.nan
    with pytest.raises(ValueError, match="missing/non-finite targets in the val split"):
        _fit(gs, y, sp, tmp_path, 1)


def test_classification_mode(data, tmp_path):
    gs, y, sp, _ = data
    labels = (y > np.median(y)).astype(np.int64)
    seed_everything(0)
    model = CGCNN(classification=True, **SMALL)
    rec = fit(model, gs, labels, sp, task="classification", property="stable", profile="test",
              runs_dir=tmp_path, epochs=2, **FAST)
    assert 0.0 <= rec["test_accuracy"] <= 1.0 and rec["hparams"]["train"]["loss"] == "cross_entropy"
    assert "val_accuracy" in rec["curves"] and rec["normalizer"] is None


# ------------------------------------------------------------------------------------ any data


@register
class TinyMLP(nn.Module):
    """A dense-feature model (stands for the SOAP MLP): fit does not care what a batch is."""

    def __init__(self, n_in: int = 4):
        super().__init__()
        self.init_kwargs = {"n_in": n_in}
        self.net = nn.Sequential(nn.Linear(n_in, 16), nn.Softplus(), nn.Linear(16, 1))

    def forward(self, x):
        return self.net(x).squeeze(1)


class DenseSet:
    def __init__(self, x):
        self.x = torch.as_tensor(x, dtype=torch.float32)

    def batch(self, indices):
        return self.x[torch.as_tensor(np.asarray(indices))]


def test_fit_takes_any_data_with_a_batch_method(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    y = x @ np.array([1.0, -2.0, 0.5, 0.0]) + 3.0
    sp = {"train": np.arange(160), "val": np.arange(160, 180), "test": np.arange(180, 200)}
    seed_everything(0)
    rec = fit(TinyMLP(), DenseSet(x), y, sp, property="toy", model_name="mlp", runs_dir=tmp_path,
              epochs=60, batch_size=32, optimizer="adam", lr=0.01, num_threads=1, progress=False)
    assert rec["run"] == "mlp_toy_custom_s0" and rec["hparams"]["graph"] is None
    assert rec["test_mae"] < 0.2 * np.abs(y - y.mean()).mean()
    ck = records.load_checkpoint(tmp_path / "mlp_toy_custom_s0.pt", device="cpu")
    assert type(ck.model) is TinyMLP


def test_weight_averaging(data, tmp_path):
    """ema > 0: the averaged weights are validated and written; resuming keeps the average; ema = 0 leaves
    the resume key of runs made before the option existed unchanged."""
    gs, y, sp, _ = data
    model, plain = _fit(gs, y, sp, tmp_path / "plain", 3, lr=0.02)
    model_e, avg = _fit(gs, y, sp, tmp_path / "ema", 3, lr=0.02, ema=0.9)
    assert avg["hparams"]["train"]["ema"] == 0.9 and plain["hparams"]["train"]["ema"] == 0.0
    assert avg["curves"]["train_mae"] == plain["curves"]["train_mae"]  # the same training steps
    assert avg["curves"]["val_mae"] != plain["curves"]["val_mae"]  # validated with other weights
    # the checkpoint holds the averaged weights: it reproduces the record's test predictions
    ck = records.load_checkpoint(tmp_path / "ema" / f"{avg['run']}.pt", device="cpu")
    p = predict_data(ck.model, gs, sp["test"], ck.normalizer)
    np.testing.assert_allclose(p, avg["test_predictions"]["y_pred"], rtol=1e-6, atol=1e-6)
    # interrupted and resumed: the same numbers as straight through
    _fit(gs, y, sp, tmp_path / "ema2", 2, lr=0.02, ema=0.9)
    _, resumed = _fit(gs, y, sp, tmp_path / "ema2", 3, lr=0.02, ema=0.9)
    assert resumed["resumed_from_epoch"] == 2 and resumed["curves"]["val_mae"] == avg["curves"]["val_mae"]
    assert resumed["test_mae"] == avg["test_mae"]
    # a default run's state key does not mention ema (so older states still resume)
    assert plain["data_key"] == _fit(gs, y, sp, tmp_path / "again", 1, lr=0.02)[1]["data_key"]
    with pytest.raises(ValueError, match="ema decay"):
        _fit(gs, y, sp, tmp_path / "bad", 1, ema=1.5)


def test_resident_graphs_give_the_host_batches_and_results(data, tmp_path):
    """A GraphSet held on the device (lib.device_graphs) batches exactly like the host GraphSet, so a run with
    resident=True (the default on CUDA) is the run with resident=False."""
    from lib.device_graphs import DeviceGraphSet

    gs, y, sp, _ = data
    dev = DeviceGraphSet(gs, "cpu")
    for idx in (np.array([3, 0, 7]), np.arange(len(gs))[::-1], np.array([5])):
        a, b = gs.batch(idx), dev.batch(idx)
        for f in ("numbers", "edge_src", "edge_dst", "distance", "crystal"):
            assert torch.equal(getattr(a, f), getattr(b, f)), f
        assert a.n_crystals == b.n_crystals
    _, host = _fit(gs, y, sp, tmp_path / "host", 2, resident=False)
    _, resident = _fit(gs, y, sp, tmp_path / "dev", 2, resident=True)
    assert resident["curves"]["val_mae"] == host["curves"]["val_mae"]
    assert resident["test_mae"] == host["test_mae"] and resident["data_key"] == host["data_key"]
