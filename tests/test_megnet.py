"""MEGNet: Set2Set on a hand-computed case, invariances, isolated atoms, sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from lib.graphs import build_graph, build_graphs, collate, megnet_params
from lib.models.megnet import MEGNet, MEGNetBlock, Set2Set
from lib.models.ops import segment_mean
from lib.structures import Crystal


def _lifepo4_like() -> Structure:
    """A low-symmetry 6-atom cell (no ties in its distances), built by hand."""
    lat = Lattice.from_parameters(4.7, 5.9, 6.3, 84.0, 97.0, 101.0)
    return Structure(lat, ["Li", "Fe", "P", "O", "O", "O"],
                     [[0.02, 0.03, 0.05], [0.51, 0.47, 0.12], [0.23, 0.71, 0.58],
                      [0.77, 0.18, 0.39], [0.36, 0.29, 0.83], [0.64, 0.86, 0.71]])


def test_segment_mean_empty_group_is_zero():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    out = segment_mean(x, torch.tensor([0, 0, 2]), 3)
    assert torch.allclose(out, torch.tensor([[2.0, 3.0], [0.0, 0.0], [5.0, 6.0]]))


def test_set2set_matches_hand_computation():
    """hidden=1, projection m = 2x + 0.5, LSTM weights zero and fixed biases: scalar recursion by hand."""
    s2s = Set2Set(in_dim=1, hidden=1, steps=3)
    b_i, b_f, b_g, b_o = 0.3, -0.2, 0.9, 0.4
    with torch.no_grad():
        s2s.proj.weight.fill_(2.0)
        s2s.proj.bias.fill_(0.5)
        s2s.lstm.weight.zero_()
        s2s.lstm.bias.copy_(torch.tensor([b_i, b_f, b_g, b_o]))
    x = torch.tensor([[1.0], [2.0], [-1.0], [0.25], [3.0]])
    index = torch.tensor([0, 0, 1, 1, 1])
    out = s2s(x, index, 2)

    sig = lambda z: 1.0 / (1.0 + math.exp(-z))  # noqa: E731
    groups = {0: [2.5, 4.5], 1: [-1.5, 1.0, 6.5]}  # m = 2x + 0.5
    c = h = 0.0
    for _ in range(3):
        c = sig(b_f) * c + sig(b_i) * math.tanh(b_g)
        h = sig(b_o) * math.tanh(c)
    expected = []
    for g in (0, 1):
        w = [math.exp(m * h) for m in groups[g]]
        r = sum(wi * m for wi, m in zip(w, groups[g])) / sum(w)
        expected.append([h, r])
    assert torch.allclose(out, torch.tensor(expected), atol=1e-6)


def test_set2set_permutation_invariant_and_empty_group():
    torch.manual_seed(0)
    s2s = Set2Set(4, 8, 3)
    x = torch.randn(7, 4)
    idx = torch.tensor([0, 0, 0, 2, 2, 2, 2])
    perm = torch.randperm(7)
    a = s2s(x, idx, 3)
    b = s2s(x[perm], idx[perm], 3)
    assert torch.allclose(a, b, atol=1e-6)
    assert torch.all(a[1] == 0)  # a crystal with no members (e.g. no bonds) reads out zeros


def _predict(model: MEGNet, structures: list[Structure], cutoff: float = 4.0) -> torch.Tensor:
    graphs = [build_graph(Crystal.from_structure(s), megnet_params(cutoff)) for s in structures]
    with torch.no_grad():
        return model(collate(graphs))


@pytest.fixture(scope="module")
def model() -> MEGNet:
    torch.manual_seed(0)
    return MEGNet(cutoff=4.0).eval()


def test_permutation_and_supercell_invariance(model):
    s = _lifepo4_like()
    perm = np.random.default_rng(1).permutation(len(s))
    s_perm = Structure(s.lattice, [s[i].specie for i in perm], s.frac_coords[perm])
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    prim = nacl.get_primitive_structure()
    p = _predict(model, [s, s_perm, s * (2, 1, 1), prim, nacl, prim * (2, 2, 1)])
    assert abs(p[0] - p[1]) < 1e-5
    assert abs(p[0] - p[2]) < 1e-4
    assert abs(p[3] - p[4]) < 1e-4 and abs(p[3] - p[5]) < 1e-4
    assert abs(p[0] - p[3]) > 1e-4  # and the model does tell different crystals apart


def test_parameter_count_matches_architecture():
    """Embedding 101x16, three blocks, two Set2Sets, head (96 -> 32 -> 16 -> 1): counted by hand."""
    m = MEGNet()
    lin = lambda a, b: a * b + b  # noqa: E731
    ff = lambda d: lin(d, 64) + lin(64, 32)  # noqa: E731
    upd = lambda d: lin(d, 64) + lin(64, 64) + lin(64, 32)  # noqa: E731
    block = upd(4 * 32) + upd(32 + 32 + 32) + upd(32 + 32 + 32)
    s2s = lin(32, 16) + lin(32, 64)
    expected = (101 * 16 + ff(16) + ff(100) + ff(2) + 3 * block + 2 * 3 * ff(32) + 2 * s2s
                + lin(96, 32) + lin(32, 16) + lin(16, 1))
    assert sum(p.numel() for p in m.parameters()) == expected


def test_isolated_atom_is_reported_not_crashed(capsys, tmp_path):
    """A Li atom 5 Å from everything has no neighbour at 4 Å: reported by id, dropped or kept."""
    lat = Lattice.cubic(10.0)
    s = Structure(lat, ["Li", "O", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0.62]])
    ok = _lifepo4_like()
    crystals = [Crystal.from_structure(s), Crystal.from_structure(ok)]
    gs = build_graphs(crystals, megnet_params(4.0), ids=["mp-iso", "mp-ok"], cache=False, n_jobs=1,
                      progress=False)
    err = capsys.readouterr().err
    assert "mp-iso" in err and "raise the cutoff" in err
    assert list(gs.material_ids) == ["mp-ok"]
    kept = build_graphs(crystals, megnet_params(4.0), ids=["mp-iso", "mp-ok"], cache=False, n_jobs=1,
                        progress=False, on_isolated="keep")
    torch.manual_seed(0)
    out = MEGNet(cutoff=4.0).eval()(kept.batch(np.arange(2)))
    assert out.shape == (2,) and torch.isfinite(out).all()


def test_split_edge_update_equals_concatenation():
    torch.manual_seed(0)
    block = MEGNetBlock(32, pre=False)
    n, n_e, b = 9, 40, 2
    v, e, u = torch.randn(n, 32), torch.randn(n_e, 32), torch.randn(b, 32)
    src, dst = torch.randint(0, n, (n_e,)), torch.randint(0, n, (n_e,))
    edge_graph = (dst >= 5).long()
    fast = block.edge_update(v, e, u, src, dst, edge_graph)
    ref = block.edge_update_reference(v, e, u, src, dst, edge_graph)
    assert torch.allclose(fast, ref, atol=1e-5)


def test_overfits_32_real_crystals(mirror, tmp_path):
    """Formation energy of 32 mirror crystals through lib.train.fit: training MAE below 0.02 eV/atom."""
    from lib.data import load_dataset, target_frame
    from lib.train import Normalizer, fit, predict_data, seed_everything

    frame = target_frame(load_dataset("cgcnn", source="mirror", mirror=mirror, progress=False, verbose=False),
                         "formation_energy_per_atom", n_max=32, seed=0)
    gs = build_graphs(frame, megnet_params(4.0), cache=False, n_jobs=1, progress=False, on_isolated="keep")
    y = frame["formation_energy_per_atom"].to_numpy()[gs.source_index]
    idx = np.arange(len(gs))
    seed_everything(0)
    model = MEGNet(cutoff=4.0)
    rec = fit(model, gs, y, {"train": idx, "val": idx[:4], "test": idx[:4]}, epochs=150, batch_size=32,
              optimizer="adam", lr=0.003, scheduler="none", num_threads=1, property="formation_energy_per_atom",
              profile="overfit", runs_dir=tmp_path, progress=False)
    pred = predict_data(model, gs, idx, Normalizer(**rec["normalizer"]))
    mae = float(np.abs(pred - y).mean())
    assert len(gs) == 32 and np.std(y) > 0.5
    assert mae < 0.02, mae
    assert rec["model_class"] == "MEGNet" and rec["n_parameters"] == sum(p.numel() for p in model.parameters())


def test_predictor_serves_megnet_checkpoints(mirror, tmp_path):
    """A MEGNet checkpoint through lib.predict: a snapshot in, predictions out; an isolated atom reported."""
    from lib.data import export_snapshot, load_dataset, split, target_frame
    from lib.predict import predict
    from lib.records import load_checkpoint
    from lib.train import fit, predict_data, seed_everything

    frame = target_frame(load_dataset("cgcnn", source="mirror", mirror=mirror, progress=False, verbose=False),
                         "band_gap", n_max=24, seed=3)
    gs = build_graphs(frame, megnet_params(4.0), cache=False, n_jobs=1, progress=False)
    y = frame["band_gap"].to_numpy()[gs.source_index]
    seed_everything(0)
    rec = fit(MEGNet(cutoff=4.0, n1=16, n2=8, n3=4), gs, y, split(len(gs), 0), epochs=1, batch_size=8,
              optimizer="adam", lr=1e-3, property="band_gap", profile="test", runs_dir=tmp_path, progress=False)
    ckpt = load_checkpoint(tmp_path / f"{rec['run']}.pt", device="cpu")
    assert ckpt.model.__class__.__name__ == "MEGNet" and ckpt.model.init_kwargs["n1"] == 16
    expected = predict_data(ckpt.model, gs, np.arange(3), ckpt.normalizer)

    snap = frame.iloc[gs.source_index[:3]].copy()
    lonely = Structure(Lattice.cubic(10.0), ["Li", "O", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0.62]])
    snap.loc[len(frame) + 1] = {**snap.iloc[0].to_dict(), "material_id": "lonely-li",
                                "structure": Crystal.from_structure(lonely)}
    path = export_snapshot(snap, tmp_path / "few.jsonl.xz")
    out = predict(ckpt, [path])
    col = "band_gap [eV]"
    assert list(out["id"]) == [*gs.material_ids[:3], "lonely-li"]
    np.testing.assert_allclose(out[col].to_numpy()[:3], expected, atol=1e-4)
    assert np.isnan(out[col].iloc[3]) and "no neighbour within 4 Å" in out["error"].iloc[3]
