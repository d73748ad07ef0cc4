"""The benchmark (the thesis's Table 6 and Figure 14), made from run records alone.

    runs = runs_frame(profile="quick")          # one row per run record in results/runs/
    table = table6(runs)                        # per (property, model): n, mean and std of each metric, ...
    table = with_thesis(table)                  # + the thesis's values (where transcribed) and the difference
    save_table6(table, "quick")                 # results/table6_quick.csv and .md
    figure14(table, "fig14_benchmark_quick.png", profile="quick")  # lib.plots.benchmark: per-property panels

Nothing here trains: a record written anywhere (a GPU box, a cluster) counts the same. Training times
are only comparable on the same hardware with the same number of threads, so every run's device is
kept (:func:`device_label`), a (property, model) cell whose runs were timed on different devices is
flagged ``mixed_devices``, and the fastest model is marked only among cells timed on one device.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lib import literature, models
from lib.data.targets import TARGETS
from lib.paths import RESULTS, RUNS, atomic_path
from lib.profiles import not_a_result
from lib.records import list_records


@dataclass(frozen=True)
class Metric:
    """A column of Table 6: its label, whether higher is better, and its unit ('target': the property's)."""

    column: str
    label: str
    higher_is_better: bool
    unit: str  # "target" | "s" | ""


METRICS: dict[str, Metric] = {m.column: m for m in (
    Metric("test_mae", "MAE", False, "target"),
    Metric("test_rmse", "RMSE", False, "target"),
    Metric("test_r2", "R²", True, ""),
    Metric("train_time_s", "training time", False, "s"),
)}
NOT_REPORTED = "not in the thesis"


# ----------------------------------------------------------------------------- records -> rows


def device_label(device: Mapping[str, Any] | str | None) -> str:
    """Where a run was timed, as one comparable string: 'cpu: AMD EPYC, 1 thread' or 'cuda: NVIDIA H100'.

    CPU runs differ by thread count as much as by chip, so it is part of the label.
    """
    if device is None:
        return "unknown"
    if isinstance(device, str):
        return device
    kind = device.get("type", "?")
    name = device.get("name") or device.get("cpu") or "?"
    if kind == "cpu" and device.get("torch_threads"):
        t = int(device["torch_threads"])
        return f"cpu: {name}, {t} thread{'s' if t != 1 else ''}"
    return f"{kind}: {name}"


def runs_frame(
    runs_dir: str | Path | None = None,
    profile: str | None = None,
    records: Iterable[Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """One row per run record (from ``runs_dir``, default results/runs, or given ``records``).

    Columns: run, model, property, unit, profile, seed, the four metrics, n_parameters,
    parameter_bytes, n_train, device (:func:`device_label`), device_type, host. Filtered to
    ``profile`` when given. Records without a test MAE (classifiers, unfinished files) are left out.
    """
    if records is None:
        runs_dir = Path(runs_dir) if runs_dir is not None else RUNS
        records = list_records(runs_dir) if runs_dir.exists() else []
    rows = []
    for r in records:
        if profile is not None and r.get("profile") != profile:
            continue
        if r.get("test_mae") is None or r.get("model") is None or r.get("property") is None:
            continue
        if r.get("member_of"):  # an extra seed of a run's ensemble (same split): not another random split
            continue
        dev = r.get("device") or {}
        rows.append({
            "run": r.get("run"), "model": r["model"], "property": r["property"], "unit": r.get("unit"),
            "profile": r.get("profile"), "seed": r.get("seed"),
            **{m: _float(r.get(m)) for m in METRICS},
            "n_parameters": _float(r.get("n_parameters")),
            "parameter_bytes": _float(r.get("parameter_bytes")),
            "n_train": (r.get("split_sizes") or {}).get("train"),
            "device": device_label(dev), "device_type": dev.get("type") if isinstance(dev, dict) else None,
            "host": dev.get("host") if isinstance(dev, dict) else None,
        })
    cols = ["run", "model", "property", "unit", "profile", "seed", *METRICS, "n_parameters",
            "parameter_bytes", "n_train", "device", "device_type", "host"]
    return pd.DataFrame(rows, columns=cols)


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


# ----------------------------------------------------------------------------- Table 6


def _order(table: pd.DataFrame) -> pd.DataFrame:
    """Properties in lib.data's order, models in the model table's (lib.models.MODEL_TABLE)."""
    props = list(TARGETS)
    pkey = {p: i for i, p in enumerate(props)}
    mkey = {m: i for i, m in enumerate(models.MODEL_TABLE)}
    idx = sorted(table.index,
                 key=lambda pm: (pkey.get(pm[0], len(pkey)), pm[0], mkey.get(pm[1], len(mkey)), pm[1]))
    return table.loc[idx]


def table6(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (property, model): n runs, seeds, mean and std (ddof=1; NaN for n=1) of each metric, mean
    parameter count and size, the device(s), and ``best_<metric>`` marks.

    The best MAE/RMSE (lowest) and R² (highest) are marked per property over all models; the best
    training time per property *and device*, and never in a cell with mixed devices.
    """
    cols = ["n", "seeds", "unit"] + [f"{m}_{s}" for m in METRICS for s in ("mean", "std")] + [
        "n_parameters", "parameter_bytes", "n_train", "device", "mixed_devices", "n_devices"] + [
        f"best_{m}" for m in METRICS]
    if runs.empty:
        return pd.DataFrame(columns=cols, index=pd.MultiIndex.from_tuples([], names=["property", "model"]))
    rows = {}
    for (prop, model), g in runs.groupby(["property", "model"], sort=False):
        devices = sorted(g["device"].dropna().unique())
        row: dict[str, Any] = {
            "n": len(g), "seeds": ",".join(str(s) for s in sorted(g["seed"].dropna().astype(int))),
            "unit": g["unit"].dropna().iloc[0] if g["unit"].notna().any() else None,
        }
        for m in METRICS:
            v = g[m].astype(float)
            row[f"{m}_mean"] = float(v.mean()) if v.notna().any() else math.nan
            row[f"{m}_std"] = float(v.std(ddof=1)) if v.notna().sum() > 1 else math.nan
        row["n_parameters"] = float(g["n_parameters"].mean())
        row["parameter_bytes"] = float(g["parameter_bytes"].mean())
        row["n_train"] = float(pd.to_numeric(g["n_train"], errors="coerce").mean())
        row["device"] = devices[0] if len(devices) == 1 else f"mixed ({len(devices)}): " + "; ".join(devices)
        row["mixed_devices"] = len(devices) > 1
        row["n_devices"] = len(devices)
        rows[(prop, model)] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.MultiIndex.from_tuples(table.index, names=["property", "model"])
    table = _order(mark_best(table))
    return table[cols]


def mark_best(table: pd.DataFrame) -> pd.DataFrame:
    """Add ``best_<metric>`` booleans: the best model of each property (time: within one device only)."""
    table = table.copy()
    for m, spec in METRICS.items():
        best = pd.Series(False, index=table.index)
        col = table[f"{m}_mean"].astype(float)
        if m == "train_time_s":
            ok = ~table["mixed_devices"].astype(bool)
            groups = table[ok].groupby([table[ok].index.get_level_values(0), table[ok]["device"]]).groups
        else:
            groups = table.groupby(level=0).groups
        for _, idx in groups.items():
            v = col.loc[idx].dropna()
            if len(v) == 0:
                continue
            target = v.max() if spec.higher_is_better else v.min()
            best.loc[v.index[v == target]] = True
        table[f"best_{m}"] = best
    return table


def devices(runs: pd.DataFrame) -> pd.DataFrame:
    """Which hardware timed which runs: per device label, the models, runs and hosts."""
    if runs.empty:
        return pd.DataFrame(columns=["device", "runs", "models", "hosts"])
    g = runs.groupby("device")
    return pd.DataFrame({
        "runs": g.size(),
        "models": g["model"].agg(lambda s: ", ".join(sorted(set(s)))),
        "hosts": g["host"].agg(lambda s: ", ".join(sorted({str(x) for x in s if x is not None}))),
    }).reset_index()


_CPU_LABEL = re.compile(r"^cpu: (?P<name>.*), (?P<threads>\d+) threads?$")


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def table_devices(table: pd.DataFrame) -> list[str]:
    """Every device label (:func:`device_label`) that timed a run of the table, mixed cells unpacked."""
    labels: set[str] = set()
    for d, mixed in zip(table.get("device", []), table.get("mixed_devices", []), strict=False):
        labels |= set(d.split(": ", 1)[1].split("; ")) if mixed else {d}
    return sorted(labels)


def describe_devices(labels: Iterable[str]) -> str:
    """What differs between the devices that timed the runs, as a phrase: 'with 1 and 2 threads on the same
    CPU (AMD EPYC)' when only the thread count does, else 'on 3 different devices (...)'."""
    labels = sorted(set(labels))
    if len(labels) == 1:
        return f"on one device ({labels[0]})"
    cpu = [_CPU_LABEL.match(x) for x in labels]
    if all(cpu) and len({m["name"] for m in cpu}) == 1:
        threads = sorted({int(m["threads"]) for m in cpu})
        return f"with {_and([str(t) for t in threads])} threads on the same CPU ({cpu[0]['name']})"
    return f"on {len(labels)} different devices ({'; '.join(labels)})"


def timing_warning(table: pd.DataFrame) -> str | None:
    """A sentence when the table's times were not all taken alike: on different devices, or on one CPU with
    different thread counts (which it says); None when they compare directly."""
    labels = table_devices(table)
    if len(labels) <= 1:
        return None
    return (f"Training times were taken {describe_devices(labels)}: they are ranked only among runs timed "
            "alike (same device and thread count), and cells marked 'mixed' are not ranked.")


# ----------------------------------------------------------------------------- the thesis's values


def with_thesis(table: pd.DataFrame, thesis: pd.DataFrame | None = None, source: str | None = None
                ) -> pd.DataFrame:
    """Add the thesis's Table 6 beside ours: ``thesis_<metric>`` and ``thesis_<metric>_std`` (its mean and
    std over its n runs), ``thesis_n``, ``diff_<metric>`` (ours - thesis) and ``verdict_<metric>``: "within"
    (ours within two of the thesis's standard deviations), "better" or "worse". Training times get no
    difference or verdict: the thesis timed its own CPU and GPU (``thesis_train_device``).
    """
    if thesis is None:
        thesis, source = literature.thesis_table6(), f"the thesis, Table 6 ({literature.THESIS})"
    table = table.copy()

    def col(name: str) -> pd.Series:
        if name not in thesis.columns or not len(thesis):
            return pd.Series(math.nan, index=table.index)
        return pd.Series([thesis[name].get(ix, math.nan) for ix in table.index], index=table.index)

    for m, spec in METRICS.items():
        table[f"thesis_{m}"] = pd.to_numeric(col(m), errors="coerce")
        table[f"thesis_{m}_std"] = pd.to_numeric(col(f"{m}_std"), errors="coerce")
        if m != "train_time_s":
            table[f"diff_{m}"] = table[f"{m}_mean"] - table[f"thesis_{m}"]
            table[f"verdict_{m}"] = [
                literature.verdict(o, t, ts if np.isfinite(ts) else None, spec.higher_is_better)
                if np.isfinite(o) and np.isfinite(t) else ""
                for o, t, ts in zip(table[f"{m}_mean"], table[f"thesis_{m}"], table[f"thesis_{m}_std"],
                                    strict=True)]
    table["thesis_n"] = pd.to_numeric(col("n_runs"), errors="coerce")
    table["thesis_train_device"] = col("train_device").where(lambda x: x.notna(), "")
    have = table[[f"thesis_{m}" for m in METRICS]].notna().any(axis=1)
    table["thesis_source"] = np.where(have, source or "", NOT_REPORTED)
    return table


# ----------------------------------------------------------------------------- output


def _num(v: float, digits: int = 3) -> str:
    if v is None or not np.isfinite(v):
        return "–"
    if v != 0 and (abs(v) >= 1e4 or abs(v) < 1e-3):
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}g}" if abs(v) >= 100 else f"{v:.{digits}f}"


def _size(b: float) -> str:
    if b is None or not np.isfinite(b):
        return "–"
    for unit, k in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= k:
            return f"{b / k:.3g} {unit}"
    return f"{b:.0f} B"


def display_table(table: pd.DataFrame, bold: str = "**") -> pd.DataFrame:
    """Table 6 as strings: 'mean ± std' per metric, the best wrapped in ``bold``, thesis value and Δ."""
    out = []
    for (prop, model), r in table.iterrows():
        row = {"property": prop, "model": models.display_name(model), "n": int(r["n"])}
        for m, spec in METRICS.items():
            cell = _num(r[f"{m}_mean"]) + (f" ± {_num(r[f'{m}_std'])}" if np.isfinite(r[f"{m}_std"]) else "")
            if r.get(f"best_{m}", False):
                cell = f"{bold}{cell}{bold}"
            unit = "s" if spec.unit == "s" else ""
            row[f"{spec.label}{f' ({unit})' if unit else ''}"] = cell
            if f"thesis_{m}" in table.columns:
                tv, ts = r[f"thesis_{m}"], r.get(f"thesis_{m}_std", np.nan)
                cell = NOT_REPORTED
                if np.isfinite(tv):
                    cell = _num(tv) + (f" ± {_num(ts)}" if np.isfinite(ts) else "")
                if np.isfinite(tv) and r.get(f"verdict_{m}"):
                    cell += f" ({r[f'verdict_{m}']})"
                elif np.isfinite(tv) and m == "train_time_s" and r.get("thesis_train_device"):
                    cell += f" ({r['thesis_train_device']})"
                row[f"thesis {spec.label}"] = cell
        row["parameters"] = f"{int(r['n_parameters']):,}" if np.isfinite(r["n_parameters"]) else "–"
        row["size"] = _size(r["parameter_bytes"])
        row["device"] = r["device"]
        out.append(row)
    return pd.DataFrame(out)


def to_markdown(table: pd.DataFrame, profile: str | None = None) -> str:
    """Table 6 as a Markdown table (best in bold), with the timing warning and the thesis's source below.

    profile: the runs' profile; a pipeline-test profile's table (smoke) starts with a line saying its
    numbers are no result (:func:`lib.profiles.not_a_result`).
    """
    disp = display_table(table)
    if disp.empty:
        return "_no run records_\n"
    warn_first = not_a_result(profile)
    lines = [f"**{warn_first[0].upper()}{warn_first[1:]}.**", ""] if warn_first else []
    lines += ["| " + " | ".join(disp.columns) + " |", "|" + "---|" * len(disp.columns)]
    lines += ["| " + " | ".join(str(v).replace("|", "/") for v in row) + " |"
              for row in disp.itertuples(index=False)]
    notes = ["", "Mean ± standard deviation over the n runs (random splits); **bold**: the best model of the "
             "property in that column (training time: among models timed on the same device)."]
    warn = timing_warning(table)
    if warn:
        notes.append(warn)
    if "thesis_source" in table.columns:
        src = sorted(set(table["thesis_source"]))
        notes.append("Thesis: mean ± std over its n runs (10 for the GNNs, 2 for SOAP) from " + ", ".join(src)
                     + "; within: ours within two of its standard deviations, else better or worse. Its "
                     "training times are its own CPU's (GPU where marked).")
    return "\n".join(lines + notes) + "\n"


def mae_markdown(table: pd.DataFrame, metric: str = "test_mae") -> str:
    """One metric per property and model, ours beside the thesis's: a compact Table 6 for a README.

    Each cell: our mean ± std (n runs, n_train) / the thesis's mean ± std → within, better or worse; "not run"
    where we have no record. Needs :func:`with_thesis`'s columns.
    """
    th = literature.thesis_table6()
    have = set(table.index) | set(th.index)
    props = [p for p in TARGETS if any(p == pp for pp, _ in have)] + \
        [p for p in dict.fromkeys(p for p, _ in table.index) if p not in TARGETS]
    mods = [m for m in models.MODEL_TABLE if any(m == mm for _, mm in have)]
    lines = ["| property (unit) | " + " | ".join(models.display_name(m) for m in mods) + " |",
             "|---|" + "---|" * len(mods)]
    for prop in props:
        unit = TARGETS[prop].unit if prop in TARGETS else ""
        cells = []
        for m in mods:
            if (prop, m) not in table.index:
                cells.append("not run" + (f" / {_num(th.loc[(prop, m), metric])} ± "
                                          f"{_num(th.loc[(prop, m), metric + '_std'])}"
                                          if (prop, m) in th.index else ""))
                continue
            r = table.loc[(prop, m)]
            std = r[f"{metric}_std"]
            ours = _num(r[f"{metric}_mean"]) + (f" ± {_num(std)}" if np.isfinite(std) else "")
            ours += f" (n {int(r['n'])}, {int(r['n_train']):,} train)"
            tv, ts = r.get(f"thesis_{metric}", np.nan), r.get(f"thesis_{metric}_std", np.nan)
            beside = (f" / {_num(tv)}" + (f" ± {_num(ts)}" if np.isfinite(ts) else "")
                      + f" → {r[f'verdict_{metric}']}" if np.isfinite(tv) else "")
            cells.append(ours + beside)
        label = TARGETS[prop].label if prop in TARGETS else prop
        lines.append(f"| {label} ({unit}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def save_table6(
    table: pd.DataFrame, profile: str, results_dir: str | Path | None = None
) -> tuple[Path, Path]:
    """Write ``table6_<profile>.csv`` (numbers) and ``.md`` (formatted) under results/; their paths."""
    d = Path(results_dir) if results_dir is not None else RESULTS
    csv = _write_text(d / f"table6_{profile}.csv", table.reset_index().to_csv(index=False))
    md = _write_text(d / f"table6_{profile}.md", to_markdown(table, profile))
    return csv, md


def _write_text(path: Path, text: str) -> Path:
    """Write atomically (a half-written table is never left behind)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def missing_cells(table: pd.DataFrame, properties: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """(property, model) pairs of Table 6 with no run record yet."""
    if properties is None:
        properties = list(TARGETS)
    have = set(table.index)
    return [(p, m) for p in properties for m in models.MODEL_TABLE if (p, m) not in have]


def winners(table: pd.DataFrame) -> pd.DataFrame:
    """Per property, the best model on each metric (training time: per device, ', '-joined)."""
    out = {}
    for prop, g in table.groupby(level=0, sort=False):
        names = g.index.get_level_values(1)
        out[prop] = {METRICS[m].label: ", ".join(models.display_name(x)
                                                 for x in names[g[f"best_{m}"].to_numpy()]) or "–"
                     for m in METRICS}
        out[prop]["models"] = len(g)
    return pd.DataFrame.from_dict(out, orient="index").rename_axis("property")


def what_to_run(profile: str, runs_dir: str | Path | None = None) -> str:
    """What to do when there are no records of ``profile`` yet."""
    where = Path(runs_dir) if runs_dir is not None else RUNS
    return (f"No run records of the '{profile}' profile in {where}. Table 6 and Figure 14 are made from "
            f"run records only: train the models first, e.g. `make all PROFILE={profile}` (everything), or "
            f"`python -m lib.sweep --profile {profile} --only 01,02,03,04,05` (just the runs this chapter "
            "reads), "
            f"then run this notebook again.")


__all__ = ["METRICS", "Metric", "device_label", "runs_frame", "table6", "mark_best", "devices",
           "timing_warning", "table_devices", "describe_devices", "missing_cells", "winners", "with_thesis",
           "display_table",
           "to_markdown", "save_table6", "what_to_run"]
