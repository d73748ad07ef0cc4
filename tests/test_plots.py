"""Figures: file names carry the profile (and seed), smoke figures carry their banner, formulas get
subscripts, titles use the property's label, histograms are not stretched by outliers, and no line of the
degree figure hides under another."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from lib import plots  # noqa: E402
from lib.graphs import GraphParams  # noqa: E402
from lib.plots import data as plots_data  # noqa: E402
from lib.plots import graphs as plots_graphs  # noqa: E402
from lib.plots import train as plots_train  # noqa: E402
from lib.profiles import not_a_result  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def record(profile: str, seed: int = 0, prop: str = "band_gap") -> dict:
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 5, 50)
    p = t + rng.normal(0, 0.3, 50)
    return {"run": f"cgcnn_{prop}_{profile}_s{seed}", "model": "cgcnn", "property": prop, "unit": "eV",
            "profile": profile, "seed": seed,
            "test_predictions": {"y_true": t.tolist(), "y_pred": p.tolist()},
            "metrics": {"test": {"mae": 0.24, "r2": 0.95, "n": 50}}, "best_epoch": 2,
            "curves": {"epoch": [1, 2, 3], "train_mae": [1.0, 0.5, 0.4], "val_mae": [1.1, 0.6, 0.5]}}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def banners(fig) -> list:
    return [t for t in fig.texts if t.get_gid() == plots.STAMP_GID]


# ------------------------------------------------------------------------------------------- file names


def test_figure_file_puts_profile_and_seed_in_the_name(tmp_path):
    assert plots.figure_file("parity_cgcnn_band_gap", "quick", 0) == "parity_cgcnn_band_gap_quick_s0.png"
    assert plots.figure_file("fig14_benchmark", "smoke") == "fig14_benchmark_smoke.png"
    with pytest.raises(ValueError):
        plots.figure_file("x", "../quick")
    # the same run in two profiles writes two files, neither overwriting the other
    written = {}
    for profile in ("smoke", "quick"):
        rec = record(profile)
        path = tmp_path / plots.figure_file(f"parity_{rec['model']}_{rec['property']}", profile, rec["seed"])
        plots_train.parity_plot(rec, path=path)
        hist = tmp_path / plots.figure_file("fig11_target_distributions", profile)
        plots_data.target_histograms(pd.DataFrame({"band_gap": rec["test_predictions"]["y_true"]}),
                                     ["band_gap"], path=hist)
        written[profile] = (path, hist)
    assert all(p.exists() for pair in written.values() for p in pair)
    assert len({p for pair in written.values() for p in pair}) == 4
    assert plots.figure_file("x", "quick", 0) != plots.figure_file("x", "quick", 1)


def _code_cells(nb: Path) -> list[str]:
    cells = json.loads(nb.read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def _calls(src: str, name: str) -> list[str]:
    """The argument text of every call to ``name`` in ``src`` (balanced parentheses)."""
    out = []
    for m in re.finditer(re.escape(name) + r"\(", src):
        depth, i = 1, m.end()
        while depth and i < len(src):
            depth += {"(": 1, ")": -1}.get(src[i], 0)
            i += 1
        out.append(src[m.end():i - 1])
    return out


@pytest.mark.parametrize("nb", sorted(NOTEBOOKS.glob("0*.ipynb")), ids=lambda p: p.stem)
def test_notebooks_name_every_figure_file_with_the_helper(nb):
    """Every figure a notebook writes (a ``path=`` of a figure function, or ``plots.save``) is named by
    lib.plots.figure_file (or lib.xgnn.figure_name, which calls it): no literal file names."""
    n = 0
    for src in _code_cells(nb):
        assert ".png" not in src, f"{nb.name}: a literal figure file name"
        code = "\n".join(line.split("#")[0] for line in src.splitlines())  # comments are no calls
        for m in re.finditer(r"\bpath=", code):
            arg = code[m.end():]
            if arg.startswith("path"):  # the data's path (load_dataset(..., path=path)), not a figure's
                continue
            assert arg.startswith(("plots.figure_file(", "xgnn.figure_name(")), f"{nb.name}: {arg[:60]!r}"
            n += 1
        for args in _calls(src, "plots.save"):
            assert "plots.figure_file(" in args, f"{nb.name}: plots.save({args[:60]}...)"
            n += 1
        for args in _calls(src, "figure14"):  # its path is the second positional argument
            assert "plots.figure_file(" in args, f"{nb.name}: figure14({args[:60]}...)"
            n += 1
        funcs = set(re.findall(r"\bpc\.(\w+)\(", code))  # lib.plots_cathodes saves through figure_file
        for args in (a for f in funcs for a in _calls(code, f"pc.{f}")):
            if "name=" in args:
                assert re.search(r"name=\"[a-z_]+\"", args) and "profile=" in args, f"{nb.name}: {args[:60]}"
                n += 1
        for args in _calls(src, "xgnn.figure_name"):
            assert re.search(r",\s*prof\b", args), f"{nb.name}: figure_name without the profile"
    assert n > 0, f"{nb.name} writes no figure"


# ------------------------------------------------------------------------------------------- smoke banner


def test_smoke_figures_carry_the_banner_and_quick_ones_do_not():
    note = not_a_result("smoke")
    assert "smoke profile" in note and "2 epochs" in note and "not a result" in note
    assert not_a_result("quick") is None and not_a_result("thesis") is None
    for fn in (plots_train.parity_plot, plots_train.learning_curves):
        fig = fn(record("smoke"))
        (banner,) = banners(fig)
        assert " ".join(banner.get_text().split()) == note
        # above every panel: it hides no data
        fig.canvas.draw()
        top = max(ax.get_window_extent().y1 for ax in fig.axes)
        assert banner.get_window_extent().y0 >= top
        assert banners(fn(record("quick"))) == []
    fig = plots_train.parity_plot(record("smoke"))
    plots.stamp(fig, "smoke")  # stamping again keeps one banner
    assert len(banners(fig)) == 1
    plots.stamp(fig, "quick")  # and a profile that is a result takes it away
    assert banners(fig) == []


# ------------------------------------------------------------------------------------------- labels


def test_formula_label_writes_subscripts():
    assert plots.formula_label("Ta2O5") == "Ta$_{2}$O$_{5}$"
    assert plots.formula_label("LiCoO2") == "LiCoO$_{2}$"
    assert plots.formula_label("Li0.5CoO2") == "Li$_{0.5}$CoO$_{2}$"
    assert plots.formula_label("Ca(OH)2") == "Ca(OH)$_{2}$"
    assert plots.formula_label("Fe") == "Fe"
    assert plots.formula_label("Ta2 O5") == "Ta$_{2}$O$_{5}$"


def test_titles_use_the_property_label_not_its_column():
    for fn in (plots_train.parity_plot, plots_train.learning_curves):
        title = fn(record("quick", prop="log10_K_VRH")).axes[0].get_title(loc="left")
        assert title == "CGCNN, Bulk modulus K_VRH (quick, seed 0)"
    curves = plots_train.learning_curves(record("quick", prop="log10_K_VRH"))
    assert curves.axes[0].get_ylabel() == "MAE (log₁₀ GPa)"


# ------------------------------------------------------------------------------------------- histograms


def test_histograms_clip_outliers_and_say_how_many():
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.normal(-1.5, 1.0, 5000), [-13.6, -12.0, 3.8]])
    df = pd.DataFrame({"formation_energy_per_atom": v})
    fig = plots_data.target_histograms(df, ["formation_energy_per_atom"])
    ax = fig.axes[0]
    lo, hi = np.percentile(v, [0.5, 99.5])
    assert ax.get_xlim()[0] >= lo - 0.1 * (hi - lo) and ax.get_xlim()[1] <= hi + 0.1 * (hi - lo)
    note = " ".join(t.get_text() for t in ax.texts)
    outside = int(((v < lo) | (v > hi)).sum())
    assert f"{outside} outside the view" in note and "n = 5,003" in note and "−13.6 to 3.8" in note
    assert sum(p.get_height() for p in ax.patches) == len(v) - outside  # the bars count what is shown
    whole = plots_data.target_histograms(df, ["formation_energy_per_atom"], clip=None).axes[0]
    assert whole.get_xlim()[0] < -13 and "outside" not in " ".join(t.get_text() for t in whole.texts)
    assert banners(fig) == []  # no profile: the whole dataset, not a smoke sample


# ------------------------------------------------------------------------------------------- graph degrees


def test_every_cutoff_line_of_the_degree_figure_is_visible():
    rng = np.random.default_rng(1)
    capped = np.minimum(rng.integers(5, 14, 400), 8)  # k = 8 caps every cutoff from 5 Å up: the same
    few = np.minimum(rng.integers(0, 9, 400), 8)
    deg = {GraphParams("cgcnn", c, 8).tag: (few if c == 3.0 else capped) for c in (3.0, 5.0, 6.0, 8.0)}
    rows = [{"builder": "cgcnn", "cutoff": c, "k": 8, "n_structures": 40} for c in (3.0, 5.0, 6.0, 8.0)]
    fig = plots_graphs.degree_histograms(pd.DataFrame(rows), deg, profile="smoke")
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if ln.get_label().endswith("Å")]
    assert [ln.get_label() for ln in lines] == ["3 Å", "5 Å", "6 Å", "8 Å"]
    # the three identical distributions are three distinct lines: shifted sideways, own marker and style
    xs = [tuple(np.round(ln.get_xdata(), 6)) for ln in lines[1:]]
    assert len(set(xs)) == 3
    assert len({ln.get_marker() for ln in lines}) == 4 and len({str(ln.get_linestyle()) for ln in lines}) == 4
    np.testing.assert_allclose(lines[1].get_ydata(), lines[3].get_ydata())
    assert "5, 6, 8 Å: the same" in " ".join(t.get_text() for t in ax.texts)
    assert len(banners(fig)) == 1
