"""Training recipes (what a model is built and trained with), named, and the study that chose the best one.

    r = recipes.recipe("cgcnn", "best")          # the profile's recipe: Profile.recipe names it
    model = CGCNN.from_graph_params(params, **r.model)
    config = r.train_config(epochs=60)           # a TrainConfig with the recipe's fields, overrides on top

``thesis`` is the thesis's (its Table 3 for CGCNN: SGD 0.01, momentum 0.9, batch 256, MSE, k = 8; MEGNet's
paper: Adam 1e-3, batch 128, MSE, 4 Å). ``best`` is what the study below found for CGCNN on this data;
MEGNet's ``best`` takes the schedule and averaging that helped CGCNN (it has no study of its own: see README).
Each model's recipes stand in its row of the model table (``lib.models``), so a new model brings its own.

The study (:func:`run_study`, ``python -m lib.recipes``) trains CGCNN on one fixed split and seed of one
property, changing one thing at a time on top of the previous variant (:data:`STUDY`), and writes a table of
what each change bought (validation and test MAE, time) to ``results/study/``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lib import ensembles, literature, models, records
from lib.data.load import load_dataset
from lib.data.table import split
from lib.data.targets import TARGETS
from lib.graphs import build_graphs, cgcnn_params
from lib.models import Recipe
from lib.models.cgcnn import CGCNN
from lib.paths import RESULTS
from lib.profiles import Profile, get_profile
from lib.train import fit, seed_everything


def recipe(model: str, profile: str | Profile) -> Recipe:
    """The recipe of ``model`` in ``profile`` (``Profile.recipe`` names it; the model's row of the table,
    ``lib.models``, holds its recipes)."""
    return models.get(model).recipe(get_profile(profile).recipe)


# ----------------------------------------------------------------------------- the study

#: cumulative: each variant is the previous one plus one change (model kwargs, graph kwargs, train fields)
STUDY: tuple[tuple[str, str, dict], ...] = (
    ("A", "the thesis's recipe (SGD 0.01, momentum 0.9, batch 256, MSE, k = 8)", {}),
    ("B", "+ AdamW, lr 1e-3, weight decay 1e-4", {"train": {"optimizer": "adamw", "lr": 1e-3,
                                                            "weight_decay": 1e-4}}),
    ("C", "+ cosine learning-rate schedule", {"train": {"scheduler": "cosine"}}),
    ("D", "+ batch 128", {"train": {"batch_size": 128}}),
    ("E", "+ L1 loss (the metric itself)", {"train": {"loss": "l1"}}),
    ("F", "+ k = 12 neighbours (the reference code's)", {"graph": {"max_neighbors": 12}}),
    ("G", "+ weight average (EMA 0.999)", {"train": {"ema": 0.999}}),
    ("H", "+ wider: 128 atom features, 4 convolutions", {"model": {"atom_fea_len": 128, "n_conv": 4}}),
)


def study_variants() -> list[tuple[str, str, Recipe]]:
    """The cumulative variants as Recipes."""
    out, model, graph, train = [], {}, {"cutoff": 8.0, "max_neighbors": 8}, {}
    for key, text, change in STUDY:
        model, graph, train = ({**model, **change.get("model", {})}, {**graph, **change.get("graph", {})},
                               {**train, **change.get("train", {})})
        out.append((key, text, Recipe(f"study_{key}", text, dict(model), dict(graph), dict(train))))
    return out


def run_study(property: str = "formation_energy_per_atom", n: int | None = 6000, epochs: int = 50,
              seed: int = 0, only: Sequence[str] | None = None, out_dir: str | Path | None = None,
              threads: int | None = None, holdout: str | None = "electrodes", progress: bool = True
              ) -> pd.DataFrame:
    """Train every variant (or ``only`` those keys) on one split; the table of what each change bought.

    Rows: ``n`` structures of ``property`` (after leaving out ``holdout``), split 80:10:10 with ``seed``;
    every variant is trained for ``epochs`` epochs from the same initial seed and resumes from its state.
    Writes ``<out_dir>/recipe_<property>.csv`` and ``.md`` (default results/study/); returns the table.
    """
    out_dir = Path(out_dir) if out_dir is not None else RESULTS / "study"
    runs_dir = out_dir / "runs"
    prof = Profile("study", n_max=n, epochs=epochs, seeds_gnn=(seed,), seeds_soap=(seed,), n_soap_max=n,
                   xgnn_per_class=0, xgnn_epochs=0, recipe="study", holdout=holdout)
    df = load_dataset("cgcnn", source="auto", progress=False, verbose=False)
    frame = models.get("cgcnn").training_rows(df, property, prof, seed)
    rows = []
    for key, text, r in study_variants():
        if only and key not in only:
            continue
        params = cgcnn_params(**r.graph)
        gs = build_graphs(frame, params, name=f"cgcnn_{property}", progress=progress)
        y = frame[property].to_numpy()[gs.source_index]
        seed_everything(seed)
        model = CGCNN.from_graph_params(params, **r.model)
        t0 = time.perf_counter()
        rec = fit(model, gs, y, split(len(gs), seed), r.train_config(epochs=epochs, num_threads=threads),
                  property=property, seed=seed, profile=prof, model_name=f"study{key}", runs_dir=runs_dir,
                  content_hash=frame.attrs.get("content_hash"), progress=progress,
                  extra={"recipe": r.as_dict()})
        rows.append({"variant": key, "change": text, "val_mae": rec["metrics"]["val"]["mae"],
                     "test_mae": rec["test_mae"], "test_r2": rec["test_r2"], "best_epoch": rec["best_epoch"],
                     "epochs": rec["epochs_run"], "s_per_epoch": rec["time_per_epoch_s"],
                     "n_parameters": rec["n_parameters"], "n_train": rec["split_sizes"]["train"],
                     "wall_s": time.perf_counter() - t0})
        table = _study_table(rows)
        _write_study(table, out_dir, property, prof, rec)
    return _study_table(rows)


def _study_table(rows: list[dict]) -> pd.DataFrame:
    t = pd.DataFrame(rows)
    if len(t):
        t["delta_val_mae"] = t["val_mae"].diff()
        t["delta_test_mae"] = t["test_mae"].diff()
    return t


def _write_study(table: pd.DataFrame, out_dir: Path, property: str, prof: Profile, last: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    records.write_json(out_dir / f"recipe_{property}.json", {
        "property": property, "unit": last.get("unit"), "n": prof.n_max, "epochs": prof.epochs,
        "seed": int(prof.seeds_gnn[0]), "holdout": prof.holdout, "split_sizes": last["split_sizes"],
        "device": last["device"], "rows": json.loads(table.to_json(orient="records"))})
    unit = last.get("unit") or ""
    lines = [f"Recipe study: CGCNN, {property}, {last['split_sizes']['train']:,} training crystals (seed "
             f"{prof.seeds_gnn[0]}), {prof.epochs} epochs each; MAE in {unit}; each row adds one change to "
             "the row above.", "",
             "| variant | change | val MAE | Δ val | test MAE | Δ test | R² | best epoch | s/epoch |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples(index=False):
        dv = "" if not np.isfinite(r.delta_val_mae) else f"{r.delta_val_mae:+.4f}"
        dt = "" if not np.isfinite(r.delta_test_mae) else f"{r.delta_test_mae:+.4f}"
        lines.append(f"| {r.variant} | {r.change} | {r.val_mae:.4f} | {dv} | {r.test_mae:.4f} | {dt} | "
                     f"{r.test_r2:.3f} | {r.best_epoch} | {r.s_per_epoch:.1f} |")
    (out_dir / f"recipe_{property}.md").write_text("\n".join(lines) + "\n")
    table.to_csv(out_dir / f"recipe_{property}.csv", index=False)


def _runs(runs_dir, model: str, prop: str, profile: str) -> list[dict]:
    """The runs of one model, property and profile, ensemble members left out (their split is seed 0's)."""
    return sorted((r for r in records.list_records(runs_dir, model=model, property=prop, profile=profile)
                   if not r.get("member_of")), key=lambda r: r["seed"])


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    return float(np.mean(values)), (float(np.std(values, ddof=1)) if len(values) > 1 else None)


def compare(runs_dir: str | Path | None = None, model: str = "cgcnn", properties: Sequence[str] | None = None,
            thesis_profile: str = "thesis", best_profile: str = "best") -> pd.DataFrame:
    """Per property: the thesis's recipe and the best recipe as trained here, beside the thesis's Table 6
    (mean ± std over its runs) and the model's paper; one row per property, NaN where nothing was run.

    ``best_sigmas``: how many of the thesis's standard deviations the best recipe's MAE lies below the
    thesis's mean (the issue's goal: at least 2). ``best_ensemble_mae``: the seed ensemble's mean, where the
    best profile trained one (lib.ensembles).
    """
    table6 = literature.thesis_table6()
    paper = {r.property: r for r in literature.reported(model, source=models.get(model).display + " paper")}
    rows = []
    for prop in properties or list(TARGETS):
        row: dict[str, Any] = {"property": prop, "unit": TARGETS[prop].unit}
        for key, profile in (("thesis_recipe", thesis_profile), ("best", best_profile)):
            runs = _runs(runs_dir, model, prop, profile)
            if not runs:
                continue
            m, sd = _mean_std([r["test_mae"] for r in runs])
            row.update({f"{key}_mae": m, f"{key}_mae_std": sd, f"{key}_seeds": len(runs),
                        f"{key}_n_train": runs[0]["split_sizes"]["train"],
                        f"{key}_epochs": runs[0]["epochs_run"],
                        f"{key}_time_min": float(np.mean([r["train_time_s"] for r in runs])) / 60,
                        f"{key}_device": f"{runs[0]['device'].get('type')}, "
                                         f"{runs[0]['device'].get('torch_threads')} thread(s)"})
            if key == "best":
                members = [r for r in records.list_records(runs_dir, model=model, property=prop,
                                                           profile=profile)
                           if r.get("member_of") == runs[0]["run"]]
                if members:
                    ens = ensembles.calibration(ensembles.combine(
                        sorted([runs[0], *members], key=lambda r: r["seed"])))
                    row.update({"best_ensemble_mae": ens["ensemble_mae"],
                                "best_ensemble_size": 1 + len(members)})
        if (prop, model) in table6.index:
            t = table6.loc[(prop, model)]
            row.update({"thesis_mae": t["test_mae"], "thesis_mae_std": t["test_mae_std"],
                        "thesis_runs": t["n_runs"]})
            if "best_mae" in row and t["test_mae_std"]:
                row["best_sigmas"] = (t["test_mae"] - row["best_mae"]) / t["test_mae_std"]
        if prop in paper:
            row.update({"paper_mae": paper[prop].mae, "paper_n_train": paper[prop].n_train})
        rows.append(row)
    return pd.DataFrame(rows)


def compare_markdown(table: pd.DataFrame) -> str:
    """The comparison for a reader: one line per property, test MAE with n, epochs and training time."""
    def cell(r, key: str) -> str:
        m = r.get(f"{key}_mae")
        if m is None or not np.isfinite(m):
            return "not run"
        sd = r.get(f"{key}_mae_std")
        spread = f" ± {sd:.2g}" if sd is not None and np.isfinite(sd) else ""
        seeds = int(r[f"{key}_seeds"])
        ens = ""
        if key == "best" and np.isfinite(r.get("best_ensemble_mae", np.nan)):
            ens = f"; ensemble of {int(r['best_ensemble_size'])}: {r['best_ensemble_mae']:.3g}"
        return (f"{m:.3g}{spread} ({seeds} seed{'s' if seeds > 1 else ''}{ens}; "
                f"n {int(r[f'{key}_n_train']):,}, {int(r[f'{key}_epochs'])} ep, "
                f"{r[f'{key}_time_min']:.0f} min {r[f'{key}_device']})")

    lines = ["| property (unit) | thesis recipe, here | best recipe, here | thesis Table 6 | best vs thesis "
             "| CGCNN paper |", "|---|---|---|---|---|---|"]
    for r in table.to_dict("records"):
        th = (f"{r['thesis_mae']:.3g} ± {r['thesis_mae_std']:.2g} ({int(r['thesis_runs'])} runs)"
              if np.isfinite(r.get("thesis_mae", np.nan)) else "—")
        sig = r.get("best_sigmas", np.nan)
        verdict = "—" if not np.isfinite(sig) else (
            f"{sig:+.1f} σ " + ("(goal met)" if sig >= 2 else "(goal: ≥ 2 σ)"))
        pap = (f"{r['paper_mae']:.3g} (n {int(r['paper_n_train']):,})"
               if np.isfinite(r.get("paper_mae", np.nan)) else "—")
        lines.append(f"| {TARGETS[r['property']].label} ({r['unit']}) | {cell(r, 'thesis_recipe')} | "
                     f"{cell(r, 'best')} | {th} | {verdict} | {pap} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.recipes", description="The CGCNN recipe study.")
    ap.add_argument("--property", default="formation_energy_per_atom")
    ap.add_argument("--n", type=int, default=6000, help="structures (after the held-out set); 0: all")
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="+", help="variant keys (A B ...); default all")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--compare", action="store_true",
                    help="no training: the thesis recipe and the best one as trained here, beside the "
                         "thesis's Table 6 and the paper (results/tables/recipes_compare.md)")
    a = ap.parse_args(argv)
    if a.compare:
        md = compare_markdown(compare())
        out = RESULTS / "tables" / "recipes_compare.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(md)
        print(md + f"\n(written to {out})")
        return 0
    t = run_study(a.property, a.n or None, a.epochs, a.seed, a.only, threads=a.threads)
    print(t.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
