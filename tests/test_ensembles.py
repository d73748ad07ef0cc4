"""Seed ensembles (lib.ensembles): mean and σ of members on one split, σ scaled on validation, calibration."""

from __future__ import annotations

import numpy as np
import pytest

from lib import benchmark as bm
from lib import ensembles


def _records(n_val=2000, n_test=4000, members=5, seed=0, bias_sigma=True):
    """Members whose errors are Gaussian with a per-structure width w: each member = y + w·(shared + own)."""
    rng = np.random.default_rng(seed)
    out = []
    parts = {}
    for part, n in (("val", n_val), ("test", n_test)):
        y = rng.normal(size=n)
        w = rng.uniform(0.05, 0.5, size=n) if bias_sigma else np.full(n, 0.2)
        shared = rng.normal(size=n)  # what every member gets wrong alike: invisible to the spread
        parts[part] = (y, w, shared)
    for m in range(members):
        rec = {"run": f"r_e{m}", "property": "band_gap", "unit": "eV"}
        for part, (y, w, shared) in parts.items():
            pred = y + w * (shared + rng.normal(size=len(y)))
            rec[f"{part}_predictions"] = {"y_true": y.tolist(), "y_pred": pred.tolist()}
        rec["test_predictions"]["id"] = [f"mp-{i}" for i in range(len(parts["test"][0]))]
        out.append(rec)
    return out


def test_mean_sigma_and_calibration():
    recs = _records()
    ens = ensembles.combine(recs)
    d = ens["test"]
    preds = np.array([r["test_predictions"]["y_pred"] for r in recs])
    np.testing.assert_allclose(d["mean"], preds.mean(0))
    np.testing.assert_allclose(d["std"], preds.std(0, ddof=1))
    cal = ensembles.calibration(ens)
    # the members share half of their error, so the raw spread is too small: the scale is > 1; fitted on
    # the validation set, it puts 68.3 % of the test errors within 1σ too (an independent 4,000), and fewer
    # than a Gaussian's 95 % within 2σ: the spread of 5 members is itself noisy, so error / σ has heavier tails
    assert cal["sigma_scale"] > 1.2
    assert cal["within_1sigma_raw"] < 0.65 and cal["within_2sigma_raw"] < 0.9
    assert cal["within_1sigma_scaled"] == pytest.approx(0.683, abs=0.025)
    assert 0.85 < cal["within_2sigma_scaled"] < 0.95
    assert cal["spearman_sigma_error"] > 0.3  # σ follows the per-structure width: it ranks the errors
    assert cal["ensemble_mae"] < cal["member_mae_mean"]  # averaging removes the members' own errors
    rel = cal["reliability"]
    assert rel["n"].sum() == 4000 and (rel["sigma"].diff().dropna() > 0).all()
    # a calibrated σ: the binned RMSE tracks σ
    assert np.corrcoef(rel["sigma"], rel["rmse"])[0, 1] > 0.9


def test_sigma_scale_matches_the_share_within_one_sigma_not_the_rms():
    """Heavy tails (a few errors 30σ off) would inflate an RMS-matched scale; the 1σ quantile ignores them."""
    rng = np.random.default_rng(1)
    n = 10_000
    std = np.full(n, 0.1)
    err = rng.normal(scale=0.3, size=n)  # three times the raw spread
    err[:100] = 9.0  # 1 % outliers
    s = ensembles.sigma_scale(err, np.zeros(n), std)
    assert s == pytest.approx(3.0 * 1.0, rel=0.05)  # σ·s = the core's 0.3, whatever the outliers
    assert np.mean(np.abs(err) <= s * std) == pytest.approx(ensembles.WITHIN_1SIGMA, abs=1e-3)
    assert np.sqrt(np.mean((err / std) ** 2)) > 9  # what the RMS would have given


def test_members_must_share_one_split():
    a, b = _records(members=2)
    b = dict(b, test_predictions=dict(b["test_predictions"], id=list(reversed(b["test_predictions"]["id"]))))
    with pytest.raises(ValueError, match="different structures"):
        ensembles.combine([a, b])
    with pytest.raises(ValueError, match="at least 2"):
        ensembles.combine([a])


def test_members_stay_out_of_table6():
    base = {"model": "cgcnn", "property": "band_gap", "unit": "eV", "profile": "best", "seed": 0,
            "test_mae": 0.3, "test_rmse": 0.5, "test_r2": 0.9, "train_time_s": 10.0,
            "split_sizes": {"train": 10},
            "device": {"type": "cpu", "name": "x", "torch_threads": 1}}
    recs = [dict(base, run="cgcnn_band_gap_best_s0"), dict(base, run="cgcnn_band_gap_best_s0_e1", seed=1,
                                                          member_of="cgcnn_band_gap_best_s0")]
    t = bm.table6(bm.runs_frame(records=recs, profile="best"))
    assert list(t["n"]) == [1]
