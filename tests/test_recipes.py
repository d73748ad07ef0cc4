"""Named training recipes (lib.recipes), the recipe study's variants, and held-out sets (lib.data.holdout)."""

from __future__ import annotations

import numpy as np
import pytest

from lib import data, models, recipes, records
from lib.data.holdout import holdout_ids, without_holdout
from lib.profiles import get_profile


def test_profiles_name_their_recipe():
    assert recipes.recipe("cgcnn", "thesis").train == {} and recipes.recipe("cgcnn", "quick").name == "thesis"
    cfg = recipes.recipe("cgcnn", "thesis").train_config(epochs=7, lr=None)
    assert (cfg.optimizer, cfg.lr, cfg.batch_size, cfg.epochs, cfg.loss_name) == ("sgd", 0.01, 256, 7, "mse")
    assert recipes.recipe("cgcnn", "thesis").graph == {"cutoff": 8.0, "max_neighbors": 8}  # Table 3
    best = recipes.recipe("cgcnn", "best").train_config()
    assert best.optimizer == "adamw" and best.scheduler == "cosine"
    assert recipes.recipe("megnet", "thesis").train_config().optimizer == "adam"
    assert get_profile("best").holdout == "electrodes" and get_profile("thesis").holdout is None
    with pytest.raises(KeyError, match="no recipe"):
        recipes.recipe("soap_svr", "best")


def test_study_variants_add_one_change_each():
    v = recipes.study_variants()
    assert [k for k, _, _ in v] == list("ABCDEFGH")
    a, b = v[0][2], v[1][2]
    assert a.train == {} and a.graph["max_neighbors"] == 8
    assert b.train == {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 1e-4}
    # cumulative: the last has every change
    last = v[-1][2]
    assert last.train["ema"] == 0.999 and last.train["loss"] == "l1" and last.graph["max_neighbors"] == 12
    assert last.model == {"atom_fea_len": 128, "n_conv": 4}


def test_electrodes_are_held_out_of_the_best_profile(mirror):
    ids = holdout_ids("electrodes")
    assert len(ids) == 7598  # both materials of the 4,401 pairs (some in several pairs)
    df = data.load_dataset("cgcnn", source="auto", progress=False, verbose=False)
    kept = without_holdout(df, "electrodes")
    assert len(df) - len(kept) == 1935 and not kept["material_id"].isin(ids).any()
    rows = models.get("cgcnn").training_rows(df, "formation_energy_per_atom", "best", 0)
    assert len(rows) == 36737 - 1935 and not rows["material_id"].isin(ids).any()
    assert rows.attrs["content_hash"] != models.get("cgcnn").training_rows(
        df, "formation_energy_per_atom", "thesis", 0).attrs["content_hash"]
    with pytest.raises(ValueError, match="unknown held-out set"):
        holdout_ids("cathodes")


def _record(runs, run, prop, profile, seed, mae, member_of=None, n_test=400, rng=None):
    """A minimal run record with test and validation predictions whose MAE is ``mae``."""
    rng = rng or np.random.default_rng(seed)
    parts = {}
    for part in ("val", "test"):
        y = np.linspace(-2, 1, n_test)
        err = rng.choice([-1.0, 1.0], size=n_test) * mae  # |error| = mae exactly
        parts[part] = {"id": [f"mp-{i}" for i in range(n_test)], "y_true": y.tolist(),
                       "y_pred": (y + err).tolist()}
    rec = {"run": run, "model": "cgcnn", "property": prop, "profile": profile, "seed": seed, "unit": "eV/atom",
           "test_mae": mae, "split_sizes": {"train": 3200, "val": n_test, "test": n_test}, "epochs_run": 20,
           "train_time_s": 600.0 * (seed + 1), "device": {"type": "cpu", "torch_threads": 1},
           "val_predictions": parts["val"], "test_predictions": parts["test"]}
    if member_of:
        rec["member_of"] = member_of
    records.write_json(runs / f"{run}.json", rec)
    return rec


def test_compare_sets_each_recipe_beside_the_thesis(tmp_path):
    fe = "formation_energy_per_atom"
    _record(tmp_path, "cgcnn_fe_thesis_s0", fe, "thesis", 0, 0.090)
    _record(tmp_path, "cgcnn_fe_thesis_s1", fe, "thesis", 1, 0.094)
    _record(tmp_path, "cgcnn_fe_best_s0", fe, "best", 0, 0.060)
    for s in (1, 2):  # ensemble members share seed 0's split: not counted as seeds of the best recipe
        _record(tmp_path, f"cgcnn_fe_best_s0_e{s}", fe, "best", s, 0.062, member_of="cgcnn_fe_best_s0")
    t = recipes.compare(tmp_path, properties=[fe, "band_gap"]).set_index("property")
    r = t.loc[fe]
    assert r["thesis_recipe_mae"] == pytest.approx(0.092) and r["thesis_recipe_seeds"] == 2
    assert r["thesis_recipe_mae_std"] == pytest.approx(np.std([0.090, 0.094], ddof=1))
    assert r["thesis_recipe_time_min"] == pytest.approx(15.0)  # mean of 10 and 20 min
    assert r["best_mae"] == pytest.approx(0.060) and r["best_seeds"] == 1
    assert r["best_ensemble_size"] == 3
    assert r["best_ensemble_mae"] <= 0.0614  # the mean of three members with random error signs
    # the thesis's Table 6 (0.083 ± 0.007 over 10 runs) and the CGCNN paper's 0.039 with its n
    assert (r["thesis_mae"], r["thesis_mae_std"], r["thesis_runs"]) == (0.083, 0.007, 10)
    assert r["best_sigmas"] == pytest.approx((0.083 - 0.060) / 0.007)
    assert (r["paper_mae"], r["paper_n_train"]) == (0.039, 28046)
    assert np.isnan(t.loc["band_gap", "best_mae"]) and t.loc["band_gap", "thesis_mae"] == 0.387
    md = recipes.compare_markdown(t.reset_index())
    assert "| Band gap (eV) | not run | not run | 0.387 ± 0.011 (10 runs) | — |" in md
    assert "0.06 (1 seed; ensemble of 3:" in md and "+3.3 σ (goal met)" in md
