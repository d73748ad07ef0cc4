"""SOAP descriptors (lib.soap), the SOAP-SVR (lib.svr) and the SOAP-MLP head (lib.models.soap_mlp).

Structures are built by hand (ase.build), so these tests need neither the data mirror nor the network.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sps
from ase.build import bulk, make_supercell

from lib import soap
from lib.structures import Crystal

SPECIES = [3, 8, 11, 12, 14, 17, 27, 29, 30]  # a small "dataset" species list: Li O Na Mg Si Cl Co Cu Zn


def crystal(atoms) -> Crystal:
    return Crystal(atoms.cell.array, atoms.get_scaled_positions(wrap=False), atoms.numbers)


def triclinic(seed: int = 0, n: int = 7, zs=(3, 27, 8)) -> Crystal:
    """A low-symmetry 3-element crystal: skewed cell, random sites (so every l of SOAP is nonzero)."""
    rng = np.random.default_rng(seed)
    lattice = np.array([[4.1, 0.0, 0.0], [0.9, 4.6, 0.0], [0.7, -0.5, 5.3]]) + rng.normal(0, 0.1, (3, 3))
    numbers = np.array([zs[i % len(zs)] for i in range(n)])
    return Crystal(lattice, rng.random((n, 3)), numbers)


def small_set() -> list[Crystal]:
    """Twelve distinct crystals of the SPECIES elements (prototypes at a few lattice constants)."""
    out = []
    for a in (4.0, 4.3):
        out += [crystal(bulk("NaCl", "rocksalt", a=a + 1.6)), crystal(bulk("MgO", "rocksalt", a=a)),
                crystal(bulk("Cu", "fcc", a=a - 0.4)), crystal(bulk("Si", "diamond", a=a + 1.4)),
                crystal(bulk("ZnO", "wurtzite", a=a - 0.75, c=a + 1.2)), triclinic(int(a * 10))]
    return out


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


# ----------------------------------------------------------------------------- the descriptor


def test_thesis_settings_and_size():
    p = soap.SoapParams()
    assert (p.r_cut, p.n_max, p.l_max, p.average, p.periodic) == (5.0, 1, 2, "inner", True)
    # n_max = 1: one block of (l_max + 1) = 3 numbers per unordered species pair
    s = len(SPECIES)
    assert soap.n_features(SPECIES) == 3 * s * (s + 1) // 2 == 135
    assert soap.n_features(list(range(1, 88))) == 3 * 87 * 88 // 2 == 11484


def test_crystal_to_atoms_keeps_geometry():
    c = triclinic(1)
    a = soap.crystal_to_atoms(c)
    assert a.pbc.all()
    np.testing.assert_allclose(a.positions, c.cart_coords, atol=1e-12)
    np.testing.assert_allclose(a.cell.array, c.lattice)
    assert a.numbers.tolist() == c.numbers.tolist()


def test_matches_dscribe_called_directly():
    from dscribe.descriptors import SOAP

    atoms = bulk("ZnO", "wurtzite", a=3.25, c=5.2)
    direct = SOAP(species=SPECIES, r_cut=5.0, n_max=1, l_max=2, periodic=True, average="inner",
                  sparse=False).create(atoms)
    ours = soap.compute_soap([crystal(atoms)], SPECIES, progress=False)
    assert ours.shape == (1, 135) and sps.isspmatrix_csr(ours)
    np.testing.assert_allclose(ours.toarray()[0], direct, rtol=1e-12, atol=1e-14)
    assert direct.max() > 0.1  # a real, nonzero vector


def test_invariant_to_atom_order():
    c = triclinic(2, n=9)
    perm = np.random.default_rng(5).permutation(len(c))
    shuffled = Crystal(c.lattice, c.frac_coords[perm], c.numbers[perm])
    X = soap.compute_soap([c, shuffled], SPECIES, progress=False).toarray()
    assert rel(X[1], X[0]) < 1e-10


def test_invariant_to_the_choice_of_cell():
    # rocksalt: primitive fcc cell (2 atoms) vs conventional cube (8 atoms)
    prim, conv = bulk("NaCl", "rocksalt", a=5.64), bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    # a low-symmetry crystal vs a skewed supercell of it (4 copies), sites also shifted by a lattice vector
    c = triclinic(3)
    sup = make_supercell(soap.crystal_to_atoms(c), np.array([[1, 1, 0], [0, 2, 0], [0, 0, 2]]))
    sup.positions += c.lattice[0]
    X = soap.compute_soap([crystal(prim), crystal(conv), c, crystal(sup)], SPECIES, progress=False).toarray()
    assert len(sup) == 4 * len(c)
    assert rel(X[1], X[0]) < 1e-6
    assert rel(X[3], X[2]) < 1e-6
    # ... and it is not trivially constant: a strained cell differs
    strained = Crystal(c.lattice * 1.05, c.frac_coords, c.numbers)
    assert rel(soap.compute_soap([strained], SPECIES, progress=False).toarray()[0], X[2]) > 1e-3


def test_nonzeros_only_in_the_crystals_species_pairs():
    crystals = small_set()
    X = soap.compute_soap(crystals, SPECIES, progress=False)
    s = soap.make_soap(SPECIES)
    for c, row in zip(crystals, X, strict=True):
        allowed = soap.pair_columns(s, c.numbers)
        assert set(row.indices.tolist()) <= set(allowed.tolist())
        # the l = 0 entry of every pair present is a product of two positive densities: > 0
        zs = sorted(set(c.numbers.tolist()))
        dense = row.toarray()[0]
        for i, a in enumerate(zs):
            for b in zs[i:]:
                assert dense[s.get_location((a, b)).start] > 0
    # a 3-element crystal fills 6 pairs x 3 = 18 of the 135 columns at most
    assert soap.sparsity(X[[5]])["nnz_max"] <= 18
    assert soap.sparsity(X)["density"] < 0.15


def test_elements_outside_the_species_list_are_named():
    c = Crystal(np.eye(3) * 4, [[0, 0, 0]], [26])  # Fe, not in SPECIES
    with pytest.raises(ValueError, match="mp-fake.*26"):
        soap.compute_soap([c], SPECIES, progress=False, labels=["mp-fake"])


def test_dataset_species_and_parallel_equals_serial():
    crystals = small_set()
    assert soap.dataset_species(crystals) == [3, 8, 11, 12, 14, 17, 27, 29, 30]
    serial = soap.compute_soap(crystals, SPECIES, n_jobs=1, progress=False)
    parallel = soap.compute_soap(crystals, SPECIES, n_jobs=2, chunk_size=5, progress=False)
    assert (serial != parallel).nnz == 0


# ----------------------------------------------------------------------------- the cache


def test_cache_round_trip_subset_and_changed_parameter(tmp_path, monkeypatch):
    crystals = small_set()
    X = soap.soap_features(crystals, SPECIES, cache_dir=tmp_path, progress=False)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 3 and any(f.endswith(".npz") for f in files)
    meta = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert meta["species"] == SPECIES and meta["params"]["r_cut"] == 5.0 and meta["n"] == 12

    def boom(*a, **k):
        raise AssertionError("recomputed instead of reading the cache")

    monkeypatch.setattr(soap, "compute_soap", boom)
    again = soap.soap_features(crystals, SPECIES, cache_dir=tmp_path, progress=False)
    assert (again != X).nnz == 0 and again.dtype == np.float64
    # a subset in another order is sliced out of the cached superset
    sub = soap.soap_features([crystals[7], crystals[2]], SPECIES, cache_dir=tmp_path, progress=False)
    assert (sub != X[[7, 2]]).nnz == 0
    # a changed parameter, species list or structure must not read that cache
    for kw in ({"params": soap.SoapParams(r_cut=4.0)}, {"species": SPECIES + [26]}):
        with pytest.raises(AssertionError, match="recomputed"):
            soap.soap_features(crystals, **{"species": SPECIES, **kw}, cache_dir=tmp_path, progress=False)
    moved = [Crystal(c.lattice * 1.01, c.frac_coords, c.numbers) for c in crystals[:2]]
    with pytest.raises(AssertionError, match="recomputed"):
        soap.soap_features(moved, SPECIES, cache_dir=tmp_path, progress=False)
    monkeypatch.undo()
    Xs = soap.soap_features(crystals, SPECIES, params=soap.SoapParams(sigma=0.5), cache_dir=tmp_path,
                            progress=False)
    assert len(list(tmp_path.glob("*.npz"))) == 2
    assert rel(Xs.toarray(), X.toarray()) > 1e-2  # narrower atomic Gaussians give other numbers


def test_r_cut_is_inert_with_one_gto_radial_function():
    """dscribe places its GTO decay radii at linspace(1 Å, r_cut, n_max): with n_max = 1 the only radial
    function decays to 1e-3 at 1 Å whatever r_cut is, and r_cut changes nothing (the thesis's setting)."""
    crystals = small_set()
    X5 = soap.compute_soap(crystals, SPECIES, soap.SoapParams(r_cut=5.0), progress=False).toarray()
    X3 = soap.compute_soap(crystals, SPECIES, soap.SoapParams(r_cut=3.0), progress=False).toarray()
    assert rel(X3, X5) < 1e-6
    # with two radial functions it matters
    two5 = soap.compute_soap(crystals, SPECIES, soap.SoapParams(r_cut=5.0, n_max=2), progress=False)
    two3 = soap.compute_soap(crystals, SPECIES, soap.SoapParams(r_cut=3.0, n_max=2), progress=False)
    assert rel(two3.toarray(), two5.toarray()) > 1e-2


def test_cache_key_depends_on_params_species_and_structures():
    crystals = small_set()[:3]
    base = soap.cache_path(crystals, SPECIES)
    assert soap.cache_path(crystals, SPECIES) == base
    assert soap.cache_path(crystals, SPECIES, soap.SoapParams(l_max=3)) != base
    assert soap.cache_path(crystals, SPECIES[:-1]) != base
    assert soap.cache_path(crystals[::-1], SPECIES) != base


# ----------------------------------------------------------------------------- SOAP-SVR


def _svr_data():
    crystals = small_set()
    X = soap.compute_soap(crystals, SPECIES, progress=False)
    y = np.linspace(-2.0, 1.0, len(crystals)) + np.random.default_rng(0).normal(0, 0.05, len(crystals))
    return X, y


def test_svr_record_and_known_solution(tmp_path):
    from lib.svr import fit_svr, load_svr, svr_model_path

    X, y = _svr_data()
    split = {"train": np.arange(10), "test": np.array([10, 11])}
    rec, model = fit_svr(X, y, split, property="band_gap", seed=3, profile="smoke", runs_dir=tmp_path,
                         return_model=True, unit="eV")
    # the record: names, sizes, metrics, support vectors
    assert rec["run"] == "soap_svr_band_gap_smoke_s3" and rec["model"] == "soap_svr"
    assert rec["split_sizes"] == {"train": 10, "test": 2}
    assert rec["n_support"] == len(model.support_) and 1 <= rec["n_support"] <= 10
    assert rec["n_parameters"] == rec["support_nnz"] + rec["n_support"] + 1
    assert rec["support_dense_size"] == rec["n_support"] * 135
    assert rec["parameter_bytes"] > 0 and rec["train_time_s"] >= 0
    assert set(rec["metrics"]["test"]) == {"mae", "rmse", "r2", "n"}
    on_disk = json.loads((tmp_path / "soap_svr_band_gap_smoke_s3.json").read_text())
    assert on_disk["n_support"] == rec["n_support"] and on_disk["test_mae"] == pytest.approx(rec["test_mae"])
    assert load_svr(svr_model_path(rec["run"], tmp_path))["normalizer"] == rec["normalizer"]
    # gamma="scale" is 1 / (n_features * Var(X)) over every entry of the training matrix
    Xt = X[split["train"]].toarray()
    assert rec["hparams"]["model"]["gamma_value"] == pytest.approx(1.0 / (Xt.shape[1] * Xt.var()), rel=1e-9)
    # predictions = sum_i alpha_i exp(-gamma |x_i - x|^2) + b on the standardised scale, mapped back
    g, mean, std = model._gamma, rec["normalizer"]["mean"], rec["normalizer"]["std"]
    assert mean == pytest.approx(y[:10].mean()) and std == pytest.approx(y[:10].std())
    sv = model.support_vectors_.toarray()
    Xa = X.toarray()
    k = np.exp(-g * ((Xa[:, None, :] - sv[None, :, :]) ** 2).sum(-1))
    alpha = np.asarray(model.dual_coef_.todense()).ravel()  # sparse after a fit on sparse rows
    by_hand = (k @ alpha + model.intercept_[0]) * std + mean
    np.testing.assert_allclose(by_hand[10:], rec["test_predictions"]["y_pred"], rtol=1e-9, atol=1e-9)
    # KKT: training points that are not support vectors lie inside the epsilon tube (standardised units)
    resid = np.abs(by_hand[:10] - y[:10]) / std
    inside = np.setdiff1d(np.arange(10), model.support_)
    assert np.all(resid[inside] <= 0.1 + 1e-3)


def test_svr_large_C_interpolates_within_epsilon(tmp_path):
    from lib.svr import fit_svr

    X, y = _svr_data()
    split = {"train": np.arange(12), "test": np.arange(12)}
    rec = fit_svr(X, y, split, C=1e4, runs_dir=tmp_path, write=False, score_train=True)
    assert rec["metrics"]["train"]["n"] == 12 and "train" not in fit_svr(X, y, split, write=False)["metrics"]
    # distinct crystals, an RBF kernel of full rank: with a loose C every point fits within the tube
    err = np.abs(np.asarray(rec["test_predictions"]["y_pred"]) - y)
    assert err.max() <= 0.1 * y.std() * 1.01
    assert rec["metrics"]["test"]["r2"] > 0.99
    assert not list(tmp_path.iterdir())  # write=False writes nothing


def test_svr_target_scaling_is_a_parameter(tmp_path):
    from lib.svr import fit_svr

    X, y = _svr_data()
    y = y * 0.05  # a target whose spread (std 0.047) is below epsilon = 0.1 in its own units
    split = {"train": np.arange(12), "test": np.arange(12)}
    std = fit_svr(X, y, split, write=False)
    raw = fit_svr(X, y, split, write=False, standardize_target=False)
    assert raw["normalizer"] == {"mean": 0.0, "std": 1.0}
    # raw units: every point fits in the tube around a constant, so the SVR learns nothing
    assert raw["n_support"] == 0 and np.ptp(raw["test_predictions"]["y_pred"]) == 0.0
    # standardised: epsilon is 0.1 std, the SVR keeps support vectors and follows the target
    assert std["n_support"] == 12 and std["metrics"]["test"]["r2"] > 0.2


def test_svr_rejects_missing_targets():
    from lib.svr import fit_svr

    X, y = _svr_data()
    y[3] = np.nan
    with pytest.raises(ValueError, match="1 missing.*train"):
        fit_svr(X, y, {"train": np.arange(10), "test": np.array([10, 11])}, write=False)


# ----------------------------------------------------------------------------- SOAP-MLP


def test_soap_mlp_is_cgcnns_head():
    import torch

    from lib.models.registry import build_model, count_parameters, model_spec
    from lib.models.soap_mlp import SoapMLP

    m = SoapMLP(135, h_fea_len=128, n_h=2)
    assert count_parameters(m)[0] == 135 * 128 + 128 + (128 * 128 + 128) + 128 + 1
    x = torch.randn(5, 135)
    assert m(x).shape == (5,)
    again = build_model(model_spec(m))
    again.load_state_dict(m.state_dict())
    torch.testing.assert_close(again(x), m(x))
    # by hand: softplus(W1 x + b1) -> softplus(W2 . + b2) -> w . + b
    sp = torch.nn.functional.softplus
    h = sp(sp(x @ m.fc_in.weight.T + m.fc_in.bias) @ m.fcs[0].weight.T + m.fcs[0].bias)
    torch.testing.assert_close(m(x), (h @ m.fc_out.weight.T + m.fc_out.bias).squeeze(1))


def test_soap_set_batches_sparse_or_dense_rows_same_predictions():
    import torch

    from lib.models.soap_mlp import SoapMLP

    X, _ = _svr_data()
    sparse = soap.SoapSet(X, material_ids=[f"m{i}" for i in range(12)])
    dense = soap.SoapSet(X, sparse_batches=False)
    bs, bd = sparse.batch(np.array([4, 1, 7])), dense.batch(np.array([4, 1, 7]))
    assert bs.layout == torch.sparse_coo and bd.layout == torch.strided
    assert tuple(bs.shape) == tuple(bd.shape) == (3, 135) and bd.dtype == bs.dtype == torch.float32
    np.testing.assert_allclose(bd.numpy(), X[[4, 1, 7]].toarray(), rtol=1e-6)
    np.testing.assert_array_equal(bs.to_dense().numpy(), bd.numpy())
    torch.manual_seed(0)
    m = SoapMLP(135, n_h=2)
    torch.testing.assert_close(m(bs), m(bd), rtol=1e-5, atol=1e-6)
    # gradients of the first layer agree too (the sparse product's backward)
    m(bs).sum().backward()
    g_sparse = m.fc_in.weight.grad.clone()
    m.zero_grad()
    m(bd).sum().backward()
    torch.testing.assert_close(g_sparse, m.fc_in.weight.grad, rtol=1e-5, atol=1e-6)


def test_soap_mlp_fits_a_small_set(tmp_path):
    X, _ = _svr_data()
    y = X @ np.random.default_rng(1).normal(size=X.shape[1])  # a smooth function of the SOAP vector
    split = {"train": np.arange(12), "val": np.arange(12), "test": np.arange(12)}
    rec = soap.fit_soap_mlp(X, y, split, property="band_gap", seed=0, profile="smoke", runs_dir=tmp_path,
                            epochs=60, batch_size=12, optimizer="adam", lr=1e-2, progress=False,
                            species=SPECIES, material_ids=[f"m{i}" for i in range(12)])
    assert rec["model"] == "soap_mlp" and rec["run"] == "soap_mlp_band_gap_smoke_s0"
    assert rec["n_parameters"] == 135 * 128 + 128 + 128 + 1
    assert rec["hparams"]["graph"]["descriptor"] == "soap" and rec["hparams"]["graph"]["r_cut"] == 5.0
    # it memorises 12 crystals: training MAE far below that of predicting the mean
    assert rec["metrics"]["test"]["mae"] < 0.1 * np.abs(y - y.mean()).mean()
    assert (tmp_path / "soap_mlp_band_gap_smoke_s0.json").exists()


def test_frame_features_share_one_whole_dataset_cache(tmp_path):
    import pandas as pd

    crystals = small_set()
    df = pd.DataFrame({"material_id": [f"m{i}" for i in range(12)], "structure": crystals})
    frame = df.iloc[[9, 3, 4]].reset_index(drop=True)
    X = soap.frame_features(frame, df, whole_dataset=True, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.glob("*.npz"))) == 1  # only the whole dataset's matrix
    direct = soap.compute_soap([crystals[i] for i in (9, 3, 4)], soap.dataset_species(crystals), progress=False)
    assert X.shape == (3, 135) and (X != direct).nnz == 0
    # without whole_dataset only the frame's rows are computed, still in the dataset's layout
    alone = soap.frame_features(frame, df, cache_dir=tmp_path / "alone", progress=False)
    assert (alone != direct).nnz == 0
