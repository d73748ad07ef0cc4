"""CGCNN: the split convolution is the reference's, invariances hold, and it can learn real crystals."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch import nn

from lib.graphs import build_graph, build_graphs, cgcnn_params, collate
from lib.models.registry import build_model, count_parameters, model_spec
from lib.models.cgcnn import CGCNN, CGCNNConv
from lib.structures import Crystal

LOW_SYMMETRY_ID = "mp-676400"  # TlNO2, P1, 4 atoms: every atom has exactly k neighbours (no ties)


@functools.lru_cache(maxsize=1)
def _table():
    from lib.data import load_dataset

    return load_dataset("cgcnn", source="mirror", progress=False, verbose=False)


@pytest.fixture(scope="module")
def table(mirror):
    return _table()


def rocksalt() -> Crystal:
    """NaCl in its 2-atom primitive (fcc) cell, a = 5.64 Å."""
    a = 5.64
    lattice = 0.5 * a * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]])
    return Crystal(lattice, [[0, 0, 0], [0.5, 0.5, 0.5]], [11, 17])


def supercell(c: Crystal, n: tuple[int, int, int]) -> Crystal:
    """The (n0, n1, n2) supercell of ``c``, atoms ordered image by image."""
    shifts = np.array([(i, j, k) for i in range(n[0]) for j in range(n[1]) for k in range(n[2])], float)
    frac = ((c.frac_coords[None, :, :] + shifts[:, None, :]) / np.array(n)).reshape(-1, 3)
    return Crystal(c.lattice * np.array(n)[:, None], frac, np.tile(c.numbers, len(shifts)))


def trained_like(model: CGCNN, seed: int = 0) -> CGCNN:
    """Give the batch norms non-trivial running statistics and affine weights, then eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.normal_(0, 0.5, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0, 0.2, generator=g)
    return model.eval()


# ------------------------------------------------------------------------------------ the layer


def test_split_linear_equals_concatenated_linear():
    torch.manual_seed(0)
    a, g, n, e = 16, 7, 9, 40
    conv = CGCNNConv(a, g).double()
    h = torch.randn(n, a, dtype=torch.float64)
    ef = torch.randn(e, g, dtype=torch.float64)
    src, dst = torch.randint(0, n, (e,)), torch.randint(0, n, (e,))
    # the pre-activation: W_s h_i + W_n h_j + (W_e e_ij + b) == Linear([h_i, h_j, e_ij]) with the same weights
    plain = nn.Linear(2 * a + g, 2 * a).double()
    plain.load_state_dict(conv.fc_full.state_dict())
    p_self, p_nbr = conv.atom_terms(h)
    z_split = conv.edge_term(ef) + p_self[dst] + p_nbr[src]
    z_cat = plain(torch.cat([h[dst], h[src], ef], dim=1))
    assert torch.allclose(z_split, z_cat, rtol=0, atol=1e-12)
    # the whole convolution, values and gradients, in training and in eval mode
    for train in (True, False):
        conv.train(train)
        h1 = h.clone().requires_grad_(True)
        h2 = h.clone().requires_grad_(True)
        out1, out2 = conv(h1, ef, src, dst), conv.reference_forward(h2, ef, src, dst)
        assert torch.allclose(out1, out2, rtol=0, atol=1e-12)
        g1 = torch.autograd.grad(out1.square().sum(), [h1, conv.fc_full.weight])
        g2 = torch.autograd.grad(out2.square().sum(), [h2, conv.fc_full.weight])
        for a1, a2 in zip(g1, g2, strict=True):
            assert torch.allclose(a1, a2, rtol=0, atol=1e-10)


def test_split_catches_swapped_roles():
    """The equality above is not vacuous: swapping centre and neighbour changes the output."""
    torch.manual_seed(1)
    conv = CGCNNConv(8, 5).double().eval()
    h = torch.randn(6, 8, dtype=torch.float64)
    ef = torch.randn(20, 5, dtype=torch.float64)
    src, dst = torch.randint(0, 6, (20,)), torch.randint(0, 6, (20,))
    assert not torch.allclose(conv(h, ef, src, dst), conv.reference_forward(h, ef, dst, src), atol=1e-6)


def test_defaults_are_table3_and_parameter_count():
    m = CGCNN()
    assert (len(m.convs), m.convs[0].atom_fea_len, m.conv_to_fc.out_features, len(m.fcs)) == (3, 64, 128, 0)
    assert m.edge_fea_len == 41  # Gaussians 0..8 Å every 0.2 Å
    # reference CGCNN with 92 atom features, 41 edge features: embedding 92*64+64, 3 convs of
    # (169*128+128) + bn1 2*128 + bn2 2*64, conv_to_fc 64*128+128, fc_out 128+1
    conv = 169 * 128 + 128 + 2 * 128 + 2 * 64
    expected = 92 * 64 + 64 + 3 * conv + 64 * 128 + 128 + 128 + 1
    assert count_parameters(m) == (expected, 4 * expected)
    assert not m.atom_features.requires_grad and "atom_features" in m.state_dict()


def test_every_hyperparameter_is_a_parameter_and_rebuilds_from_its_spec():
    table = np.eye(12, dtype=np.float32)  # e.g. 07_xgnn's own one-hot table
    m = CGCNN(atom_features=table, atom_fea_len=8, n_conv=2, h_fea_len=16, n_h=3, cutoff=6.0, step=0.5)
    assert (len(m.convs), len(m.fcs), m.edge_fea_len, m.embedding.in_features) == (2, 2, 13, 12)
    m2 = build_model(model_spec(m))
    m2.load_state_dict(m.state_dict())
    assert type(m2) is CGCNN and m2.init_kwargs["n_h"] == 3


# ------------------------------------------------------------------------------------ invariances


def _predict(model: CGCNN, crystals: list[Crystal], params) -> np.ndarray:
    with torch.no_grad():
        return model(collate([build_graph(c, params) for c in crystals])).numpy()


@pytest.mark.parametrize("k", [8, 12])
def test_atom_permutation_leaves_prediction_unchanged(table, k):
    torch.manual_seed(0)
    model = trained_like(CGCNN())
    params = cgcnn_params(8.0, k)
    rows = table[table.structure.map(len).between(5, 20)].iloc[:3]
    for c in rows.structure:
        perm = np.random.default_rng(0).permutation(len(c))
        shuffled = Crystal(c.lattice, c.frac_coords[perm], c.numbers[perm])
        p = _predict(model, [c, shuffled], params)
        assert abs(p[0] - p[1]) < 1e-5


@pytest.mark.parametrize("k", [8, 12])
def test_supercell_gets_the_primitive_cell_prediction(table, k):
    """Rocksalt (its shells are full of ties) and a P1 crystal without ties."""
    torch.manual_seed(0)
    model = trained_like(CGCNN())
    params = cgcnn_params(8.0, k)
    low = table.set_index("material_id").structure[LOW_SYMMETRY_ID]
    g = build_graph(low, params)
    assert g.n_edges == k * len(low)  # no ties at the k-th distance in this one
    for c, n in ((rocksalt(), (2, 2, 2)), (rocksalt(), (3, 1, 2)), (low, (2, 1, 1)), (low, (1, 2, 2))):
        p = _predict(model, [c, supercell(c, n)], params)
        assert abs(p[0] - p[1]) < 1e-4, (c, n, p)
    # and the predictions differ between crystals, so the check can fail
    p = _predict(model, [rocksalt(), low], params)
    assert abs(p[0] - p[1]) > 1e-3


def test_reference_cut_at_exactly_k_breaks_supercell_invariance_for_fcc():
    """Why graphs keep ties: with exactly k=8 of NaCl's 12 nearest Cl the cut is arbitrary."""
    from lib.graphs import GraphParams

    params = GraphParams("cgcnn", 8.0, 8, include_ties=False)
    g = build_graph(rocksalt(), params)
    assert g.n_edges == 16  # 8 of the 12 equivalent nearest neighbours per atom: an arbitrary choice


# ------------------------------------------------------------------------------------ heads & modes


def test_classification_head_gives_log_probabilities(table):
    torch.manual_seed(0)
    m = CGCNN(classification=True).eval()
    params = cgcnn_params()
    out = _predict(m, list(table.structure.iloc[:4]), params)
    assert out.shape == (4, 2)
    assert np.allclose(np.exp(out).sum(1), 1.0, atol=1e-5)


def test_connectivity_only_mode_ignores_distances():
    torch.manual_seed(0)
    m = CGCNN(use_distance=False).eval()
    assert m.edge_fea_len == 1 and m.expansion is None
    b = collate([build_graph(rocksalt(), cgcnn_params())])
    with torch.no_grad():
        p1 = m(b)
        b.distance = b.distance * 0 + 123.0
        p2 = m(b)
    assert torch.equal(p1, p2)
    geo = CGCNN().eval()  # the default model does read them
    with torch.no_grad():
        assert not torch.allclose(geo(b), geo(collate([build_graph(rocksalt(), cgcnn_params())])))


def test_compiled_hot_path_matches_eager(table):
    """compile=True fuses gather + batch norm + gate; same values, gradients and running statistics."""
    torch.manual_seed(0)
    eager = CGCNN(atom_fea_len=16, n_conv=2, h_fea_len=16).double()
    fused = build_model(model_spec(eager)).double()
    fused.load_state_dict(eager.state_dict())
    fused.compile_hot_path()
    b = collate([build_graph(c, cgcnn_params()) for c in table.structure.iloc[:3]])
    b.distance = b.distance.double()
    y = torch.tensor([0.3, -0.2, 1.0], dtype=torch.float64)
    grads = []
    for m in (eager, fused):
        m.train()
        ((m(b) - y) ** 2).sum().backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in m.parameters()]))
    assert torch.allclose(grads[0], grads[1], rtol=1e-7, atol=1e-9 * float(grads[0].abs().max()))
    for (k, a), b_ in zip(eager.state_dict().items(), fused.state_dict().values(), strict=True):
        assert torch.allclose(a.double(), b_.double(), rtol=1e-9, atol=1e-12), k  # running stats alike
    eager.eval(), fused.eval()
    with torch.no_grad():
        assert torch.allclose(eager(b), fused(b), rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------------------ learning


def test_overfits_32_real_crystals(table, tmp_path):
    """Formation energy of 32 mirror crystals: training MAE well below 0.02 eV/atom (eval mode)."""
    from lib.data import target_frame
    from lib.train import Normalizer, fit, predict_data, seed_everything

    frame = target_frame(table, "formation_energy_per_atom", n_max=32, seed=0)
    gs = build_graphs(frame, cgcnn_params(), cache=False, n_jobs=1, progress=False)
    y = frame["formation_energy_per_atom"].to_numpy()[gs.source_index]
    idx = np.arange(len(gs))
    seed_everything(0)
    model = CGCNN()
    rec = fit(model, gs, y, {"train": idx, "val": idx[:4], "test": idx[:4]}, epochs=120, batch_size=32,
              optimizer="adamw", lr=0.003, scheduler="none", num_threads=1,
              property="formation_energy_per_atom", profile="overfit", runs_dir=tmp_path, progress=False)
    pred = predict_data(model, gs, idx, Normalizer(**rec["normalizer"]))
    mae = float(np.abs(pred - y).mean())
    assert mae < 0.02, mae
    assert np.std(y) > 0.5  # the data are not trivially constant
    assert rec["curves"]["train_mae"][-1] < 0.02
