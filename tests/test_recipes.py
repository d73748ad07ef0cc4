"""Named training recipes (lib.recipes), the recipe study's variants, and held-out sets (lib.data.holdout)."""

from __future__ import annotations

import pytest

from lib import data, models, recipes
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
