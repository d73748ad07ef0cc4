"""Table 6 from hand-made run records: mean, std and n per cell, the best marked, mixed devices flagged."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lib import benchmark as bm
from lib.plots import benchmark as plots_benchmark

CPU1 = {"type": "cpu", "name": "AMD EPYC", "cpu": "AMD EPYC", "torch_threads": 1, "host": "a"}
CPU2 = {"type": "cpu", "name": "AMD EPYC", "cpu": "AMD EPYC", "torch_threads": 2, "host": "a"}
GPU = {"type": "cuda", "name": "NVIDIA H100", "cpu": "Intel Xeon", "torch_threads": 16, "host": "g"}


def rec(model, prop, seed, mae, rmse, r2, t, device=CPU1, n_params=100, profile="quick"):
    return {"run": f"{model}_{prop}_{profile}_s{seed}", "model": model, "property": prop, "unit": "eV",
            "profile": profile, "seed": seed, "test_mae": mae, "test_rmse": rmse, "test_r2": r2,
            "train_time_s": t, "n_parameters": n_params, "parameter_bytes": 4 * n_params,
            "split_sizes": {"train": 80, "val": 10, "test": 10}, "device": device}


@pytest.fixture
def records():
    return [
        rec("cgcnn", "band_gap", 0, 0.40, 0.60, 0.80, 100.0),
        rec("cgcnn", "band_gap", 1, 0.50, 0.70, 0.70, 120.0),
        rec("cgcnn", "band_gap", 2, 0.60, 0.80, 0.60, 140.0),
        rec("soap_svr", "band_gap", 0, 0.55, 0.50, 0.75, 2.0, n_params=40),
        rec("soap_svr", "band_gap", 1, 0.65, 0.60, 0.85, 4.0, n_params=60),
        # MEGNet timed once on the CPU, once on a GPU: a mixed cell, never ranked on time
        rec("megnet", "band_gap", 0, 0.70, 0.90, 0.50, 1.0, device=CPU1),
        rec("megnet", "band_gap", 1, 0.90, 1.10, 0.30, 0.5, device=GPU),
        rec("cgcnn", "efermi", 0, 0.30, 0.40, 0.90, 50.0, device=GPU),
        rec("soap_mlp", "efermi", 0, 0.35, 0.45, 0.85, 60.0, device=CPU2),
        rec("cgcnn", "band_gap", 0, 9.0, 9.0, -1.0, 1.0, profile="smoke"),  # another profile
        {"run": "xgnn_whatever", "model": "xgnn", "property": "band_gap", "profile": "quick"},  # no metrics
    ]


def test_runs_frame_filters_profile_and_labels_devices(records):
    runs = bm.runs_frame(records=records, profile="quick")
    assert len(runs) == 9
    assert set(runs["device"]) == {"cpu: AMD EPYC, 1 thread", "cpu: AMD EPYC, 2 threads", "cuda: NVIDIA H100"}
    assert len(bm.runs_frame(records=records)) == 10
    assert bm.runs_frame(records=[]).empty


def test_table6_mean_std_n_and_best(records):
    t = bm.table6(bm.runs_frame(records=records, profile="quick"))
    # order: lib.data's properties (formation, energy, efermi, band_gap...), then cgcnn, megnet, svr, mlp
    assert list(t.index) == [("efermi", "cgcnn"), ("efermi", "soap_mlp"), ("band_gap", "cgcnn"),
                             ("band_gap", "megnet"), ("band_gap", "soap_svr")]
    c = t.loc[("band_gap", "cgcnn")]
    assert c["n"] == 3 and c["seeds"] == "0,1,2"
    assert c["test_mae_mean"] == pytest.approx(0.5)
    assert c["test_mae_std"] == pytest.approx(0.1)  # sample std of 0.4, 0.5, 0.6
    assert c["train_time_s_std"] == pytest.approx(20.0)
    s = t.loc[("band_gap", "soap_svr")]
    assert s["n"] == 2 and s["n_parameters"] == 50 and s["parameter_bytes"] == 200
    assert s["test_rmse_std"] == pytest.approx(math.sqrt(0.005))
    assert math.isnan(t.loc[("efermi", "cgcnn"), "test_mae_std"])  # n = 1: no spread
    # best per property: MAE lowest (cgcnn 0.50 < svr 0.60), RMSE lowest (svr 0.55), R² highest (svr 0.80)
    best = {m: list(t.index[t[f"best_{m}"]]) for m in bm.METRICS}
    assert best["test_mae"] == [("efermi", "cgcnn"), ("band_gap", "cgcnn")]
    assert best["test_rmse"] == [("efermi", "cgcnn"), ("band_gap", "soap_svr")]
    assert best["test_r2"] == [("efermi", "cgcnn"), ("band_gap", "soap_svr")]
    # time: MEGNet's mixed cell has the smallest mean (0.75 s) but is not ranked; SVR is the fastest on CPU1;
    # on efermi the two models ran on different devices, so each is the fastest of its own device
    assert best["train_time_s"] == [("efermi", "cgcnn"), ("efermi", "soap_mlp"), ("band_gap", "soap_svr")]


def test_mixed_devices_flagged_and_warned(records):
    runs = bm.runs_frame(records=records, profile="quick")
    t = bm.table6(runs)
    assert list(t["mixed_devices"]) == [False, False, False, True, False]
    assert t.loc[("band_gap", "megnet"), "device"].startswith("mixed (2)")
    warn = bm.timing_warning(t)
    assert warn and "on 3 different devices" in warn
    one = bm.table6(runs[runs["device"] == "cpu: AMD EPYC, 1 thread"])
    assert bm.timing_warning(one) is None
    # one machine, different thread counts: the warning says that, not "different devices"
    cpu = bm.table6(runs[runs["device_type"] == "cpu"])
    warn = bm.timing_warning(cpu)
    assert "with 1 and 2 threads on the same CPU (AMD EPYC)" in warn and "different devices" not in warn
    d = bm.devices(runs).set_index("device")
    assert d.loc["cuda: NVIDIA H100", "runs"] == 2 and d.loc["cuda: NVIDIA H100", "models"] == "cgcnn, megnet"


def test_thesis_beside_ours_with_a_verdict(records):
    t = bm.with_thesis(bm.table6(bm.runs_frame(records=records, profile="quick")))
    # every cell of our table has the thesis's Table 6 beside it (lib.literature), with its n and std
    assert t["thesis_test_mae"].notna().all() and (t["thesis_source"].str.contains("Table 6")).all()
    row = t.loc[("band_gap", "cgcnn")]
    assert (row["thesis_test_mae"], row["thesis_test_mae_std"], row["thesis_n"]) == (0.387, 0.011, 10)
    assert row["diff_test_mae"] == pytest.approx(row["test_mae_mean"] - 0.387)
    # given values: within two of the thesis's std, else better or worse (R²: higher is better)
    idx = pd.MultiIndex.from_tuples([("band_gap", "cgcnn")], names=["property", "model"])
    thesis = pd.DataFrame({"test_mae": [0.45], "test_mae_std": [0.01], "test_rmse": [np.nan],
                           "test_r2": [0.9], "test_r2_std": [0.2], "train_time_s": [10.0], "n_runs": [10]},
                          index=idx)
    table = bm.table6(bm.runs_frame(records=records, profile="quick"))
    t = bm.with_thesis(table, thesis, "the thesis, Table 6")
    row = t.loc[("band_gap", "cgcnn")]
    assert row["diff_test_mae"] == pytest.approx(0.05) and row["diff_test_r2"] == pytest.approx(-0.2)
    assert row["verdict_test_mae"] == "worse" and row["verdict_test_r2"] == "within"
    assert math.isnan(row["diff_test_rmse"]) and row["verdict_test_rmse"] == ""
    assert "diff_train_time_s" not in t.columns
    md = bm.to_markdown(t)
    assert "0.450 ± 0.010 (worse)" in md and bm.NOT_REPORTED in md  # megnet: no thesis row given here
    assert "**0.500 ± 0.100**" in md  # the best MAE of band_gap, in bold


def test_compact_mae_table_beside_the_thesis(records):
    t = bm.with_thesis(bm.table6(bm.runs_frame(records=records, profile="quick")))
    md = bm.mae_markdown(t)
    lines = md.splitlines()
    assert lines[0] == "| property (unit) | CGCNN | MEGNet | SOAP-SVR | SOAP-MLP |"
    # every property the thesis reports, in lib.data's order, even where nothing was run here
    assert [ln.split(" |")[0] for ln in lines[2:]] == [
        "| Formation energy (eV/atom)", "| Energy per atom (eV/atom)", "| Fermi energy (eV)",
        "| Band gap (eV)", "| Bulk modulus K_VRH (log10(GPa))", "| Shear modulus G_VRH (log10(GPa))",
        "| Poisson ratio (–)"]
    gap = lines[5].split(" | ")
    # ours: mean ± std (n runs, training size) / the thesis's mean ± std → verdict (0.5 - 0.387 > 2 x 0.011)
    assert gap[1] == "0.500 ± 0.100 (n 3, 80 train) / 0.387 ± 0.011 → worse"
    assert gap[4].startswith("not run / 1.326 ± 0.015")  # SOAP-MLP on band gap: the thesis's only
    assert lines[4].split(" | ")[1] == "0.300 (n 1, 80 train) / 0.438 ± 0.009 → better"


def test_outputs_and_empty(records, tmp_path):
    t = bm.with_thesis(bm.table6(bm.runs_frame(records=records, profile="quick")))
    csv, md = bm.save_table6(t, "quick", tmp_path)
    back = pd.read_csv(csv)
    assert len(back) == 5
    assert {"property", "model", "n", "test_mae_mean", "best_test_mae"} <= set(back.columns)
    assert md.read_text().startswith("| property | model | n | MAE")  # quick: no warning
    empty = bm.table6(bm.runs_frame(tmp_path / "nothing"))
    assert empty.empty and bm.to_markdown(empty).startswith("_no run records_")
    assert "make all PROFILE=quick" in bm.what_to_run("quick")
    assert len(bm.missing_cells(t)) == 28 - 5


def test_smoke_table_starts_with_its_warning(records, tmp_path):
    smoke = bm.with_thesis(bm.table6(bm.runs_frame(records=records, profile="smoke")))
    md = bm.to_markdown(smoke, "smoke")
    assert md.startswith("**Smoke profile:") and "not a result" in md.splitlines()[0]
    _, path = bm.save_table6(smoke, "smoke", tmp_path)
    assert path.read_text() == md
    quick = bm.table6(bm.runs_frame(records=records, profile="quick"))
    assert "not a result" not in bm.to_markdown(quick, "quick")


@pytest.fixture
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def _axes(fig):
    return {ax.get_label(): ax for ax in fig.axes}


def _bars(ax):
    from matplotlib.patches import Rectangle

    return [p for p in ax.patches if isinstance(p, Rectangle)]


def _errorbars(ax):
    return [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]


def test_figure14_panels_units_thesis_bars_and_error_bars(records, tmp_path, _close_figures):
    import matplotlib

    matplotlib.use("Agg")
    t = bm.with_thesis(bm.table6(bm.runs_frame(records=records, profile="quick")))
    fig = plots_benchmark.figure14(t, tmp_path / "fig14.png", profile="quick")
    assert (tmp_path / "fig14.png").stat().st_size > 10_000
    ax = _axes(fig)
    assert set(ax) >= {"mae:band_gap", "mae:efermi", "r2", "train_time_s", "legend"}
    # one MAE panel per property, in its own unit, titled with its label
    assert ax["mae:band_gap"].get_ylabel() == "test MAE (eV)" and ax["mae:band_gap"].get_title() == "Band gap"
    # band gap: three models, ours and the thesis's beside it; the thesis's hatched, in the model's colour;
    # SOAP-MLP has no band-gap run: the thesis's bar alone, and the tick says "not run"
    bars = _bars(ax["mae:band_gap"])
    assert len(bars) == 7
    ours, thesis = [b for b in bars if not b.get_hatch()], [b for b in bars if b.get_hatch()]
    assert sorted(b.get_height() for b in ours) == pytest.approx([0.5, 0.6, 0.8])
    assert sorted(b.get_height() for b in thesis) == pytest.approx([0.387, 0.531, 0.843, 1.326])
    ticks = [t.get_text() for t in ax["mae:band_gap"].get_xticklabels()]
    assert ticks == ["CGCNN\nn = 3", "MEGNet\nn = 2", "SOAP-SVR\nn = 2", "SOAP-MLP\nnot run"]
    ticks = [t.get_text() for t in ax["mae:efermi"].get_xticklabels()]
    assert ticks == ["CGCNN\nn = 1", "MEGNet\nnot run", "SOAP-SVR\nnot run", "SOAP-MLP\nn = 1"]
    assert sorted(b.get_height() for b in _bars(ax["mae:efermi"]) if b.get_hatch()) == pytest.approx(
        [0.438, 0.604, 2.223, 2.292])
    cgcnn_colour = matplotlib.colors.to_rgb(bm.models.get("cgcnn").color)
    assert matplotlib.colors.to_rgb(ours[0].get_facecolor()) == pytest.approx(cgcnn_colour)
    assert matplotlib.colors.to_rgb(thesis[0].get_edgecolor()) == pytest.approx(cgcnn_colour)
    # error bars: ours where n >= 2 (all three band-gap cells), the thesis's everywhere (its std is given);
    # efermi's runs are single (n = 1): only the thesis's four bars get one
    assert len(_errorbars(ax["mae:band_gap"])) == 7
    assert len(_errorbars(ax["mae:efermi"])) == 4
    legend = [x.get_text() for x in ax["legend"].get_legend().get_texts()]
    assert legend == ["CGCNN", "MEGNet", "SOAP-SVR", "SOAP-MLP", "thesis (its Table 6)"]
    assert any("Error bars: ± 1 std" in x.get_text() for x in ax["legend"].texts)
    # time: log axis; says how ours were timed and that the thesis's are its own CPU / GPU
    time = ax["train_time_s"]
    assert time.get_yscale() == "log"
    title = time.get_title()
    assert "on 3 different devices" in title and "thesis's times are its own CPU" in title
    assert "SOAP-MLP on its GPU" in title
    assert not any("smoke profile" in x.get_text() for x in fig.texts)  # quick: no banner

    # ours only: a table without the thesis's columns draws no hatched bar and no "thesis" entry
    fig = plots_benchmark.figure14(bm.table6(bm.runs_frame(records=records, profile="quick")))
    ax = _axes(fig)
    assert len(_bars(ax["mae:band_gap"])) == 3 and not any(b.get_hatch() for b in _bars(ax["mae:band_gap"]))
    assert len(ax["mae:band_gap"].get_xticklabels()) == 3  # without the thesis, no "not run" ticks
    assert "thesis" not in " ".join(x.get_text() for x in ax["legend"].get_legend().get_texts())
    assert "thesis" not in ax["train_time_s"].get_title()


def test_figure14_cuts_r2_and_says_so_outside_the_bars(records, _close_figures):
    import matplotlib

    matplotlib.use("Agg")
    bad = records + [rec("soap_mlp", "band_gap", s, 2.0, 3.0, -15.3, 1.0, device=CPU2) for s in (0, 1)]
    t = bm.with_thesis(bm.table6(bm.runs_frame(records=bad, profile="quick")))
    fig = plots_benchmark.figure14(t, profile="smoke")
    r2 = _axes(fig)["r2"]
    assert r2.get_ylim()[0] == -1
    title = r2.get_title()
    assert "axis cut at −1" in title and "−15.3" in title and "SOAP-MLP, Band gap" in title
    assert not r2.texts  # no note drawn inside the panel, over the bars
    banner = [x for x in fig.texts if "not a result" in x.get_text()]
    assert len(banner) == 1  # smoke: the banner
    # only CPU runs: the time panel says what differs (threads), not "different devices"
    cpu = [r for r in bad if r.get("device") is not GPU]
    fig = plots_benchmark.figure14(bm.table6(bm.runs_frame(records=cpu, profile="quick")))
    assert "with 1 and 2 threads on the same CPU" in _axes(fig)["train_time_s"].get_title()
