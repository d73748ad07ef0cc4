"""The voltage models' evaluation (lib.cathodes.voltage_eval) and the GNN voltage model (lib.cathodes.voltage_gnn):
grouped splits share no chemical system (the GNN has no pre-training to leak through), exclusions keep a user's
pairs (and their systems) out, statistics pool the seeds as documented, a killed GNN training resumes to the
same weights, and the shipped models reproduce their cards."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from lib.cathodes import correction as CR
from lib.cathodes import voltage_eval as VE
from lib.cathodes import voltage_gnn as VG
from lib.data.electrodes import load_electrode_pairs


@pytest.fixture(scope="module")
def pairs():
    p = load_electrode_pairs()
    p["system"] = [VE.system_of(f, ion) for f, ion in zip(p["low_formula"], p["ion"], strict=True)]
    return p


@pytest.mark.parametrize("seed", [0, 1])
def test_grouped_splits_share_no_system_hold_the_known_cathodes_and_differ_by_seed(pairs, seed):
    sp = VE.split(pairs, "grouped", seed)
    parts = [set(sp[k]) for k in ("train", "val", "test")]
    assert sum(map(len, parts)) == len(pairs) and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    sysn = CR.framework_groups(pairs)
    s = {k: set(sysn.iloc[sp[k]]) for k in sp}
    assert not (s["train"] & s["test"] or s["val"] & s["test"] or s["train"] & s["val"])
    assert CR.known_frameworks() & set(sysn) <= s["test"]  # every known cathode's system is tested
    assert 0.25 < len(sp["test"]) / len(pairs) < 0.4 and 0.06 < len(sp["val"]) / len(pairs) < 0.1
    other = VE.split(pairs, "grouped", seed + 1)
    assert set(other["test"]) != set(sp["test"])  # the drawn systems change with the seed


def test_random_split_is_a_partition_with_validation(pairs):
    sp = VE.split(pairs, "random", 3)
    assert sorted(np.concatenate(list(sp.values())).tolist()) == list(range(len(pairs)))
    assert abs(len(sp["test"]) - 0.2 * len(pairs)) <= 1


def test_exclusion_keeps_the_listed_pairs_and_their_systems_out(pairs, tmp_path):
    li_fepo4 = pairs[(pairs["ion"] == "Li") & (pairs["system"] == "Fe-O-P")]["battery_id"].iloc[:2].tolist()
    other = pairs[pairs["system"] == "Mn-O"]["battery_id"].iloc[:1].tolist()
    f = tmp_path / "mine.txt"
    f.write_text("# my test set\n" + "\n".join(li_fepo4 + other) + "\n\n")
    ids = VE.read_ids(f)
    assert ids == li_fepo4 + other
    only = VE.exclusion(pairs, ids)
    assert only.sum() == 3
    wide = VE.exclusion(pairs, ids, systems=True)
    n_sys = pairs["system"].isin(["Fe-O-P", "Mn-O"]).sum()
    assert wide.sum() == n_sys > 3
    for mask in (only, wide):
        for kind in VE.SPLITS:
            sp = VE.split(pairs, kind, 0, mask)
            used = np.concatenate([sp["train"], sp["val"]])
            assert not mask[used].any()
            assert not mask[sp["test"]].any()
            assert len(used) + len(sp["test"]) == len(pairs) - mask.sum()
    sp = VE.split(pairs, "random", 0, wide)
    assert not pairs.iloc[np.concatenate([sp["train"], sp["val"]])]["system"].isin(["Fe-O-P", "Mn-O"]).any()
    with pytest.raises(ValueError, match="not pairs here"):
        VE.exclusion(pairs, ["not-a-battery"])


def test_summary_pools_the_seeds_and_pairs_the_base():
    runs = pd.DataFrame({
        "battery_id": list("abcdef"), "ion": ["Li"] * 4 + ["Na"] * 2, "system": ["A", "B", "C", "A", "B", "C"],
        "model": "gnn", "split": "grouped", "seed": [0, 0, 0, 1, 1, 1],
        "voltage": [3.0, 3.2, 2.0, 3.5, 2.5, 1.0], "sigma": [0.15, 0.1, 0.3, 0.6, 0.1, 0.1],
        "reference": [3.1, 3.0, 2.0, 3.0, 2.5, 1.2], "base": [3.3, 3.0, 2.4, 3.0, 2.9, 1.2]})
    s = VE.summary(runs).set_index("ion")
    err = np.abs(runs["voltage"] - runs["reference"])
    assert s.loc["all", "mae"] == pytest.approx(err.mean())
    assert s.loc["Li", "mae"] == pytest.approx(err[:4].mean())
    assert s.loc["all", "base_mae"] == pytest.approx(np.abs(runs["base"] - runs["reference"]).mean())
    assert s.loc["all", "gain"] == pytest.approx(err.mean() - np.abs(runs["base"] - runs["reference"]).mean())
    # seed 0: 2 of 3 within 1 σ (0.1 <= 0.15, 0.2 > 0.1, 0.0); seed 1: 0.5 <= 0.6, 0 <= 0.1, 0.2 > 0.1 -> 2 of 3
    assert s.loc["all", "coverage_1sigma_mean"] == pytest.approx(2 / 3)
    assert s.loc["all", "ci_low"] <= s.loc["all", "mae"] <= s.loc["all", "ci_high"]
    # every route of the benchmark's long table on the same rows, the formation-energy route "gnn" apart from the
    # voltage model "gnn"; a route without a voltage on a row leaves it out (n < of)
    long = pd.DataFrame({"battery_id": list("abcdef") * 2, "route": ["gnn"] * 6 + ["umlip_static_sevennet"] * 6,
                         "voltage": [3.0, 3.0, 2.0, 3.0, 2.0, np.nan] + list(runs["base"])})
    same = VE.routes_on_tests(runs, long).set_index(["route", "ion"])
    assert same.loc[("voltage_gnn", "all"), "mae"] == pytest.approx(err.mean())
    assert same.loc[("umlip_static_sevennet", "all"), "mae"] == pytest.approx(s.loc["all", "base_mae"])
    assert same.loc[("gnn", "all"), "n"] == 5 and same.loc[("gnn", "all"), "of"] == 6
    names = [n for n, *_ in VE.bench_lines(runs)]
    assert {"voltage_gnn_mae_Li_vs_mp_grouped", "voltage_gnn_gain_ci_high_Li_grouped",
            "voltage_gnn_coverage_1sigma_mean_grouped", "voltage_base_mae_all_vs_mp_grouped_gnn"} <= set(names)


def test_gnn_training_resumes_after_a_kill_to_the_same_weights(pairs, tmp_path):
    torch.set_num_threads(1)
    sub = pairs[pairs["ion"].isin(["Li", "Mg"])].iloc[:48].reset_index(drop=True)
    cfg = VG.GNNConfig(atom_fea_len=8, n_conv=1, hidden=16, epochs=3, batch_pairs=16, seed=5)
    train, val = np.arange(36), np.arange(36, 48)
    whole = VG.fit(sub, train, val, cfg, folder=tmp_path / "whole")
    assert VG.fit(sub, train, val, cfg, folder=tmp_path / "killed", stop_after=1) is None  # "killed" after 1 epoch
    resumed = VG.fit(sub, train, val, cfg, folder=tmp_path / "killed")
    assert [h["epoch"] for h in resumed.info["history"]] == [1, 2, 3]
    for (k, a), b in zip(whole.net.state_dict().items(), resumed.net.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=k)
    v1, s1 = whole.predict(sub.iloc[36:])
    v2, s2 = resumed.predict(sub.iloc[36:])
    np.testing.assert_allclose(v1, v2, atol=1e-5)
    assert np.all(s1 > 0) and np.isfinite(v1).all()
    # σ_V is calibrated on the validation pairs: 68.3 % of them within 1 σ (12 pairs: 8 or 9)
    e = np.abs(v1 - sub["avg_voltage"].iloc[36:].to_numpy())
    assert 8 <= int(np.sum(e <= s1 + 1e-9)) <= 9
    with pytest.raises(ValueError, match="another run"):
        VG.fit(sub, train[:-1], val, cfg, folder=tmp_path / "killed")


def test_gnn_model_travels_as_tensors_and_json(pairs, tmp_path):
    sub = pairs.iloc[:20].reset_index(drop=True)
    cfg = VG.GNNConfig(atom_fea_len=8, n_conv=1, hidden=16, epochs=1, batch_pairs=10)
    m = VG.fit(sub, np.arange(14), np.arange(14, 20), cfg)
    back = VG.GNNVoltageModel.load(m.save(tmp_path / "m"))
    np.testing.assert_allclose(m.predict(sub)[0], back.predict(sub)[0], atol=1e-6)
    # a pair given without MP ids (a user's structures) is predicted the same
    bare = sub.drop(columns=["high_mpid", "low_mpid"])
    np.testing.assert_allclose(back.predict(bare)[0], back.predict(sub)[0], atol=1e-5)


@pytest.mark.parametrize("model", VE.MODELS)
def test_shipped_models_reproduce_their_cards(model):
    """Each shipped model's card: its grouped seed-0 split model (shipped beside it) predicts that split's test
    pairs (the split recomputed here) within 4 standard errors of the card's MAE, overall and for Li; the card's
    statistics hold every ion and both split kinds; the shipped model's training ids are pairs, none excluded."""
    folder = VE.shipped_folder(model)
    card = json.loads((folder / "card.json").read_text())
    sm = card["split_model"]
    pairs = VE.voltage_pairs()
    usable = pairs["avg_voltage"].notna() & (pairs[CR.BASE].notna() if model == "delta" else True)
    sp = VE.split(pairs, "grouped", 0, ~usable.to_numpy())
    assert sorted(pairs["battery_id"].iloc[sp["test"]]) == sm["test_battery_ids"]
    test = pairs.iloc[sp["test"]].reset_index(drop=True)
    if model == "delta":
        m = CR.VoltageModel.from_json(json.loads((folder / "grouped_s0" / "model.json").read_text()))
    else:
        m = VG.GNNVoltageModel.load(folder / "grouped_s0")
    v, s = m.predict(test)
    for ion in ("all", "Li"):
        sel = np.ones(len(test), bool) if ion == "all" else (test["ion"] == "Li").to_numpy()
        e = np.abs(v[sel] - test["avg_voltage"].to_numpy()[sel])
        se = e.std(ddof=1) / np.sqrt(len(e))
        assert abs(e.mean() - sm["test_mae"][ion]) <= 4 * se, (model, ion, e.mean(), sm["test_mae"][ion])
    assert np.all(s > 0)
    rows = pd.DataFrame(card["splits"])
    assert set(rows["split"]) == set(VE.SPLITS) and {"all", "Li", "Na", "Mg"} <= set(rows["ion"])
    assert (rows["seeds"] >= 1).all() and (rows["ci_low"] <= rows["mae"]).all()
    ids = VE.read_ids(folder / VE.TRAINING_IDS)
    assert len(ids) == card["data"]["train"] and set(ids) <= set(pairs["battery_id"])


def test_predict_voltage_with_each_model(pairs, tmp_path):
    """``python -m lib.predict --voltage Li D.cif --charged C.cif --model {delta,gnn,potential}``: one row each, the
    voltage and σ of the model named; on LiFePO4 → FePO4 (MP 3.41 V) all three within 0.5 V of MP's and the
    potential's row equal to its static voltage."""
    from lib import predict
    from lib.structures import as_structure

    row = pairs[(pairs["ion"] == "Li") & (pairs["formula_discharged"] == "LiFePO4")
                & (pairs["formula_charged"] == "FePO4")].iloc[0]
    d, c = tmp_path / "LiFePO4.cif", tmp_path / "FePO4.cif"
    as_structure(row["discharged"]).to(filename=str(d))
    as_structure(row["charged"]).to(filename=str(c))
    got = {}
    for kind in ("delta", "gnn", "potential"):
        out = tmp_path / f"{kind}.csv"
        assert predict.main(["--voltage", "Li", str(d), "--charged", str(c), "--model", kind, "--out", str(out)]) == 0
        t = pd.read_csv(out)
        assert len(t) == 1 and t["model_kind"].iloc[0] == kind and t["sigma"].iloc[0] > 0
        got[kind] = t.iloc[0]
    for kind, r in got.items():
        assert abs(r["voltage"] - row["avg_voltage"]) < 0.5, (kind, r["voltage"])
    assert got["potential"]["voltage"] == pytest.approx(got["potential"]["umlip_static_voltage"], abs=1e-6)
    assert got["delta"]["voltage"] != got["gnn"]["voltage"]
    with pytest.raises(SystemExit):
        predict.main(["--voltage", "Li", str(d), "--charged", str(c), "--model", "formation_energy"])
