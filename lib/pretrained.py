"""Shipped models: trained checkpoints committed in ``pretrained/``, each with its model card.

    from lib import pretrained
    pretrained.available()                         # one row per shipped model: property, seeds, test MAE
    card = pretrained.card("formation_energy_per_atom")
    paths = pretrained.checkpoints("band_gap")     # the ensemble's member checkpoints

A shipped model is a folder ``pretrained/<name>/`` (name: ``<model>_<property>``, e.g.
``cgcnn_formation_energy_per_atom``) holding one checkpoint per seed (``s0.pt``, ``s1.pt`` ...: the
compendium's checkpoint format, loaded with ``torch.load(weights_only=True)``) and ``card.json`` (plain JSON,
never code): the data and its content hash, the split, the recipe, per-seed test MAE/RMSE/R² and n, the
ensemble's, training time and device, commit and date; ``card.md`` says the same for a reader. A name can be
given in full or by its property alone (the CGCNN one), or by a short alias (``formation_energy``).

:func:`ship` makes such a folder from run records and their checkpoints (``results/runs/``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lib import ensembles, models, records
from lib.data.targets import TARGETS
from lib.metrics import regression_metrics
from lib.paths import ROOT, atomic_path

PRETRAINED = ROOT / "pretrained"
CARD_FORMAT = "compendium-model-card/1"
#: short names a user may type for a property
ALIASES = {"formation_energy": "formation_energy_per_atom", "energy": "energy_per_atom", "fermi": "efermi",
           "gap": "band_gap", "bulk_modulus": "log10_K_VRH", "shear_modulus": "log10_G_VRH",
           "poisson": "poisson_ratio", "K": "log10_K_VRH", "G": "log10_G_VRH"}


def _is_model_card(path: Path) -> bool:
    """A GNN ensemble's card (the voltage model's folder has a card of its own format)."""
    try:
        return json.loads(path.read_text()).get("format") == CARD_FORMAT
    except (OSError, ValueError):
        return False


def _folders(root: Path | None = None) -> list[Path]:
    root = Path(root) if root is not None else PRETRAINED
    return sorted(p for p in root.glob("*") if _is_model_card(p / "card.json")) if root.exists() else []


def resolve(name: str, root: Path | None = None) -> Path:
    """The folder of a shipped model: ``cgcnn_band_gap``, ``band_gap`` (CGCNN's), ``gap``, ``megnet_...``."""
    root = Path(root) if root is not None else PRETRAINED
    folders = {p.name: p for p in _folders(root)}
    prop = ALIASES.get(name, name)
    for cand in (name, f"cgcnn_{prop}", prop):
        if cand in folders:
            return folders[cand]
    known = ", ".join(folders) or f"none (no {root}/*/card.json)"
    raise KeyError(f"no shipped model {name!r}; shipped: {known}. "
                   f"Short names: {', '.join(f'{k} ({v})' for k, v in ALIASES.items())}")


def card(name: str, root: Path | None = None) -> dict:
    """The model card of a shipped model (JSON, read as data)."""
    folder = resolve(name, root)
    doc = json.loads((folder / "card.json").read_text())
    if doc.get("format") != CARD_FORMAT:
        raise ValueError(f"{folder / 'card.json'} is not a model card of this project")
    doc["folder"] = str(folder)
    return doc


def checkpoints(name: str, root: Path | None = None) -> list[Path]:
    """The member checkpoints of a shipped model, in seed order."""
    doc = card(name, root)
    return [Path(doc["folder"]) / m["checkpoint"] for m in doc["members"]]


def available(root: Path | None = None) -> pd.DataFrame:
    """One row per shipped model: name, model, property, unit, members, ensemble test MAE and R², n_train."""
    rows = []
    for folder in _folders(root):
        doc = json.loads((folder / "card.json").read_text())
        ens = doc.get("ensemble_test") or doc["members"][0]["test"]
        rows.append({"name": folder.name, "model": doc["model"], "property": doc["property"],
                     "unit": doc["unit"], "members": len(doc["members"]), "recipe": doc["recipe"]["name"],
                     "test_mae": ens.get("mae"), "test_r2": ens.get("r2"), "n_test": ens.get("n"),
                     "n_train": doc["members"][0]["split_sizes"]["train"]})
    return pd.DataFrame(rows, columns=["name", "model", "property", "unit", "members", "recipe", "test_mae",
                                       "test_r2", "n_test", "n_train"])


def ship(run_names: Sequence[str], recipe: dict, *, runs_dir: str | Path | None = None,
         root: str | Path | None = None, notes: Sequence[str] = ()) -> Path:
    """Copy the checkpoints of ``run_names`` (one property, one model, several seeds) into
    ``pretrained/<model>_<property>/`` and write its card; returns the folder.

    recipe: {"name": ..., "description": ..., "train": TrainConfig fields, "model": constructor kwargs,
    "graph": graph parameters, "split": how the data were split}. Several members on one split (a seed
    ensemble, lib.ensembles) also get the ensemble's test metrics, its calibration and the σ scale fitted on
    the validation set, which lib.predict applies.
    """
    recs = [records.read_record(n, runs_dir) for n in run_names]
    props = {r["property"] for r in recs}
    mods = {models.get(r["model"]).name for r in recs}
    if len(props) != 1 or len(mods) != 1:
        raise ValueError(f"one property and one model per shipped model, got {sorted(props)} / "
                         f"{sorted(mods)}")
    prop, model = props.pop(), mods.pop()
    folder = Path(root if root is not None else PRETRAINED) / f"{model}_{prop}"
    folder.mkdir(parents=True, exist_ok=True)
    members = []
    for r in sorted(recs, key=lambda r: r["seed"]):
        name = f"s{r['seed']}.pt"
        src = records.checkpoint_path(r["run"], runs_dir)
        with atomic_path(folder / name) as tmp:
            shutil.copyfile(src, tmp)
        members.append({
            "checkpoint": name, "run": r["run"], "seed": r["seed"], "split_sizes": r["split_sizes"],
            "test": r["metrics"]["test"], "val": r["metrics"]["val"], "best_epoch": r["best_epoch"],
            "epochs_run": r["epochs_run"], "train_time_s": r["train_time_s"],
            "device": {k: r["device"].get(k) for k in ("type", "name", "torch_threads", "torch")},
            "content_hash": r["content_hash"], "git_commit": r["git_commit"], "created": r["created"],
            "bytes": (folder / name).stat().st_size,
            "test_ids": r["test_predictions"]["id"],  # so that anyone can check the card's errors
        })
    first = recs[0]
    ensemble_test, scale = None, 1.0
    if len(recs) > 1:
        cal = ensembles.calibration(ensembles.combine(sorted(recs, key=lambda r: r["seed"])))
        scale = cal["sigma_scale"]
        ensemble_test = {"mae": cal["ensemble_mae"], "rmse": cal["ensemble_rmse"], "r2": cal["ensemble_r2"],
                         "n": cal["n"], "member_mae_mean": cal["member_mae_mean"],
                         "within_1sigma": cal["within_1sigma_scaled"],
                         "within_2sigma": cal["within_2sigma_scaled"],
                         "within_1sigma_raw": cal["within_1sigma_raw"],
                         "spearman_sigma_error": cal["spearman_sigma_error"]}
    doc: dict[str, Any] = {
        "format": CARD_FORMAT, "name": folder.name, "model": model, "model_class": first["model_class"],
        "property": prop, "unit": first["unit"], "label": first.get("label") or TARGETS[prop].label,
        "dataset": first.get("dataset", "cgcnn"), "profile": first["profile"],
        "profile_settings": first.get("profile_settings"), "split_seed": min(r["seed"] for r in recs),
        "data_note": TARGETS[prop].note if prop in TARGETS else "",
        "recipe": recipe, "n_parameters": first["n_parameters"], "members": members,
        "ensemble_test": ensemble_test, "sigma_scale": scale, "notes": list(notes),
        "shipped": time.strftime("%Y-%m-%d"),
        "shipped_commit": records.git_commit(),
    }
    records.write_json(folder / "card.json", doc)
    with atomic_path(folder / "card.md") as tmp:
        tmp.write_text(card_markdown(doc))
    return folder


def card_markdown(doc: dict) -> str:
    """The card for a reader."""
    unit = doc["unit"] or ""
    lines = [f"# {doc['name']}: {models.display_name(doc['model'])} for {doc['label']} ({unit})", "",
             f"Recipe **{doc['recipe']['name']}**: {doc['recipe'].get('description', '')}", "",
             f"Data: {doc['dataset']} dataset, split: {doc['recipe'].get('split', '')}.",
             *( [f"Note on the data: {doc['data_note']}"] if doc.get("data_note") else []), "",
             "| member | seed | n train / val / test | test MAE | RMSE | R² | best epoch | training time "
             "| device |",
             "|---|---|---|---|---|---|---|---|---|"]
    for m in doc["members"]:
        s, t = m["split_sizes"], m["test"]
        dev = m["device"]
        lines.append(f"| {m['checkpoint']} | {m['seed']} | {s['train']:,} / {s['val']:,} / {s['test']:,} | "
                     f"{t['mae']:.4g} | {t['rmse']:.4g} | {t['r2']:.3f} | "
                     f"{m['best_epoch']} of {m['epochs_run']} | "
                     f"{m['train_time_s'] / 60:.1f} min | {dev['type']}: {dev['name']}, "
                     f"{dev.get('torch_threads')} thread(s) |")
    ens = doc.get("ensemble_test")
    if ens:
        lines += ["", f"Ensemble (mean of the {len(doc['members'])} members) on their common test set: MAE "
                      f"{ens['mae']:.4g} {unit}, RMSE {ens['rmse']:.4g}, R² {ens['r2']:.3f} "
                      f"(n = {ens['n']:,})."]
        if "within_1sigma" in ens:
            lines.append(f"Its σ is the members' spread times {doc['sigma_scale']:.2f} (fitted on the "
                         f"validation set): {100 * ens['within_1sigma']:.0f} % of the test errors lie within "
                         "1σ, "
                         f"{100 * ens['within_2sigma']:.0f} % within 2σ (a Gaussian: 68 %, 95 %); Spearman "
                         f"of σ and the errors {ens['spearman_sigma_error']:.2f}.")
    first = doc["members"][0]
    lines += ["", f"Content hash of the training rows: `{first['content_hash']}`; trained at commit "
                  f"`{first['git_commit']}`, shipped {doc['shipped']}.", *doc.get("notes", []), ""]
    return "\n".join(lines)


def ensemble_metrics(y_true: np.ndarray, mean: np.ndarray, std: np.ndarray | None) -> dict:
    """MAE/RMSE/R²/n of an ensemble's mean, and with a σ the share of errors within 1σ and 2σ."""
    out = regression_metrics(np.asarray(y_true), np.asarray(mean))
    if std is not None:
        err = np.abs(np.asarray(y_true) - np.asarray(mean))
        out["within_1sigma"] = float(np.mean(err <= std))
        out["within_2sigma"] = float(np.mean(err <= 2 * std))
    return out


__all__ = ["PRETRAINED", "ALIASES", "resolve", "card", "checkpoints", "available", "ship", "card_markdown",
           "ensemble_metrics"]


def ship_profile(profile: str = "best", runs_dir: str | Path | None = None, root: str | Path | None = None,
                 models_: Sequence[str] = ("cgcnn",), seed: int = 0,
                 properties: Sequence[str] | None = None) -> list[Path]:
    """Ship every property's run of ``profile`` (seed ``seed``) and its seed-ensemble members, if trained
    (``properties``: only these, e.g. to ship one finished ensemble without re-stamping the others' cards)."""
    unknown = sorted(set(properties or ()) - set(TARGETS))
    if unknown:
        raise ValueError(f"unknown properties {unknown}; known: {sorted(TARGETS)}")
    runs = Path(runs_dir) if runs_dir is not None else records.RUNS
    out = []
    for model in models_:
        for prop in (properties or TARGETS):
            main = models.get(model).run_name(prop, profile, seed)
            if not records.record_path(main, runs).exists():
                continue
            members = sorted(p.stem for p in runs.glob(f"{main}_e*.json"))
            rec = records.read_record(main, runs)
            recipe = dict(rec.get("recipe") or {"name": profile, "description": ""})
            recipe["split"] = (f"random 80:10:10 (seed {seed})" + (
                f" of the rows left after the held-out set {rec['profile_settings']['holdout']!r}"
                if (rec.get("profile_settings") or {}).get("holdout") else ""))
            out.append(ship([main, *members], recipe, runs_dir=runs, root=root))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lib.pretrained [ship PROFILE [RUN ...]]``: list the shipped models, or ship runs."""
    ap = argparse.ArgumentParser(prog="python -m lib.pretrained")
    sub = ap.add_subparsers(dest="cmd")
    s = sub.add_parser("ship", help="copy a profile's trained runs (and ensemble members) into pretrained/")
    s.add_argument("profile", nargs="?", default="best")
    s.add_argument("--models", nargs="+", default=["cgcnn"])
    s.add_argument("--runs", nargs="+", default=[], help="further runs to ship, one model each (run names)")
    s.add_argument("--properties", nargs="+", default=None, help="only these properties (default: every trained one)")
    a = ap.parse_args(argv)
    if a.cmd == "ship":
        for folder in ship_profile(a.profile, models_=a.models, properties=a.properties):
            print(f"shipped {folder}")
        for run in a.runs:
            rec = records.read_record(run)
            recipe = dict(rec.get("recipe") or {"name": rec["profile"], "description": ""})
            print(f"shipped {ship([run], recipe)}")
    with pd.option_context("display.width", 160):
        print(available().to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
