"""XGNN's whole run for one classifier (both classes, one JSON file) and what is made of the explanations:
label and label-pair counts, and their enrichment (high over low) beside the real crystals'.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from lib import periodic, records
from lib.devices import device_info
from lib.paths import ROOT, XGNN_DIR, figure_file
from lib.profiles import get_profile
from lib.xgnn.classifier import ClassifierRun, LabelledGraphs
from lib.xgnn.generator import XGNN, XGNNConfig, _canonical_seed

CLASS_NAMES = ("low", "high")
#: the thesis's figure numbers (15/16: band gap by group/period, 17/18: formation energy)
THESIS_FIGURES = {
    ("band_gap", "group"): "fig15_xgnn_band_gap_group.png",
    ("band_gap", "period"): "fig16_xgnn_band_gap_period.png",
    ("formation_energy_per_atom", "group"): "fig17_xgnn_formation_energy_per_atom_group.png",
    ("formation_energy_per_atom", "period"): "fig18_xgnn_formation_energy_per_atom_period.png",
}


def training_episodes(profile: Any) -> int:
    """Generator training episodes per class: ``100 · Profile.xgnn_epochs`` (smoke 100, quick 500,
    thesis 2000)."""
    return 100 * int(get_profile(profile).xgnn_epochs)


def explanations_path(property: str, labelling: str, profile: str, seed: int,
                      out_dir: str | Path | None = None) -> Path:
    """``results/xgnn/<property>_<labelling>_<profile>_s<seed>.json``."""
    return Path(out_dir or ROOT / XGNN_DIR) / f"{property}_{labelling}_{profile}_s{seed}.json"


def load_explanations(path: str | Path) -> dict:
    """An explanations file written by :func:`explain_classifier`."""
    with open(path) as f:
        return json.load(f)


def explain_classifier(
    clf: ClassifierRun,
    profile: Any = "smoke",
    seed: int = 0,
    config: XGNNConfig | None = None,
    *,
    per_class: int | None = None,
    episodes: int | None = None,
    out_dir: str | Path | None = None,
    reuse: bool = True,
    progress: bool = True,
) -> dict:
    """Train one generator per class of ``clf`` and keep ``per_class`` explanations of each; write the JSON.

    per_class, episodes: default ``Profile.xgnn_per_class`` and :func:`training_episodes`. With
    ``reuse``, an existing file made with the same classifier run, settings and sizes is read back
    instead. Each class's trained generator is saved beside the JSON (``.class<c>.pt``).
    Labels in the file are the periodic numbers (group 1..18 or period 1..7), edges pairs of atom
    positions, probability p(class | graph).
    """
    prof = get_profile(profile)
    cfg = config or XGNNConfig()
    per_class = prof.xgnn_per_class if per_class is None else int(per_class)
    episodes = training_episodes(prof) if episodes is None else int(episodes)
    path = explanations_path(clf.property, clf.labelling, prof.name, seed, out_dir)
    key = {"classifier_run": clf.record["run"], "classifier_data_key": clf.record.get("data_key"),
           "config": cfg.as_dict(), "per_class": per_class, "episodes": episodes, "seed": seed}
    if reuse and path.exists():
        try:
            doc = load_explanations(path)
            if doc.get("key") == key:
                doc["path"] = str(path)
                return doc
        except (OSError, json.JSONDecodeError):
            pass

    doc: dict[str, Any] = {
        "property": clf.property, "labelling": clf.labelling, "profile": prof.name, "seed": seed,
        "label_names": periodic.label_names(clf.labelling), "threshold": clf.threshold,
        "unit": clf.record.get("unit"), "class_names": list(CLASS_NAMES),
        "classifier": {"run": clf.record["run"], "test_accuracy": clf.test_accuracy,
                       "val_accuracy": clf.record["metrics"]["val"]["accuracy"],
                       "checkpoint": clf.record.get("checkpoint")},
        "labels_allowed": (np.asarray(clf.labels_seen) + 1).tolist(),
        "config": cfg.as_dict(), "per_class": per_class, "episodes": episodes, "key": key,
        "classes": {},
    }
    t_all = time.perf_counter()
    for c in (0, 1):
        gen = XGNN(clf.model, clf.n_labels, c, cfg, allowed_labels=clf.labels_seen,
                   seed=_canonical_seed(seed, c))
        gen.train(episodes, progress=progress)
        res = gen.explain(per_class, progress=progress)
        records.torch_save(gen.state_dict(), path.with_suffix(f".class{c}.pt"))
        for e in res["explanations"]:
            e["labels"] = [int(x) + 1 for x in e["labels"]]
        doc["classes"][str(c)] = {
            "name": CLASS_NAMES[c], **{k: v for k, v in res.items() if k != "explanations"},
            "train_time_s": gen.train_time_s, "episodes": gen.episodes_done,
            "best_episodes": gen.best["episodes"], "best_score": gen.best["score"],
            "history": gen.history,
            "explanations": res["explanations"],
        }
    doc["wall_time_s"] = time.perf_counter() - t_all
    doc["device"] = device_info("cpu")
    doc["git_commit"] = records.git_commit()
    doc["created"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    records.write_json(path, doc)
    doc["path"] = str(path)
    return doc


def figure_name(property: str, labelling: str, profile: Any, seed: int | None = None) -> str:
    """The file of Figures 15-18 (the thesis's number kept), ``xgnn_<property>_<labelling>`` for the others,
    with the profile and seed (:func:`lib.paths.figure_file`): 'fig15_xgnn_band_gap_group_quick_s0.png'."""
    stem = THESIS_FIGURES.get((property, labelling), f"xgnn_{property}_{labelling}.png").removesuffix(".png")
    return figure_file(stem, profile, seed)


# ==================================================================================================
# counting: explanations and crystals


def _pair_index(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unordered pairs as (row ≥ col)."""
    return np.maximum(a, b), np.minimum(a, b)


def explanation_counts(explanations: list[dict], n_labels: int, one_based: bool = True
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(atoms per label (L,), undirected edges per label pair (L, L), lower triangle) of explanations."""
    off = 1 if one_based else 0
    lab_counts = np.zeros(n_labels, dtype=np.int64)
    pairs = np.zeros((n_labels, n_labels), dtype=np.int64)
    for e in explanations:
        lab = np.asarray(e["labels"], dtype=np.int64) - off
        np.add.at(lab_counts, lab, 1)
        if e["edges"]:
            ed = np.asarray(e["edges"], dtype=np.int64)
            r, c = _pair_index(lab[ed[:, 0]], lab[ed[:, 1]])
            np.add.at(pairs, (r, c), 1)
    return lab_counts, pairs


def crystal_counts(graphs: LabelledGraphs, indices=None) -> tuple[np.ndarray, np.ndarray]:
    """(atoms per label (L,), directed CGCNN edges per label pair (L, L), lower triangle) of crystals."""
    gs = graphs.graphs if indices is None else graphs.graphs.subset(np.asarray(indices))
    nl = graphs.n_labels
    lab = periodic.label_index_table(graphs.labelling)[gs.numbers]
    shift = np.repeat(gs.atom_ptr[:-1], gs.n_edges)
    src = lab[gs.edge_src.astype(np.int64) + shift]
    dst = lab[gs.edge_dst.astype(np.int64) + shift]
    r, c = _pair_index(src, dst)
    pairs = np.bincount(r * nl + c, minlength=nl * nl).reshape(nl, nl)
    return np.bincount(lab, minlength=nl), pairs


def enrichment(high: np.ndarray, low: np.ndarray, cells: int | None = None, pseudo: float = 0.5
               ) -> np.ndarray:
    """log2 of the frequency in the high class over the low class, with ``pseudo`` added to each count.

    cells: the number of categories the frequencies are over (default: high.size). NaN where both
    counts are zero.
    """
    high = np.asarray(high, dtype=np.float64)
    low = np.asarray(low, dtype=np.float64)
    k = high.size if cells is None else cells
    fh = (high + pseudo) / (high.sum() + pseudo * k)
    fl = (low + pseudo) / (low.sum() + pseudo * k)
    out = np.log2(fh / fl)
    return np.where((high + low) > 0, out, np.nan)


def enrichment_table(doc: dict, clf: ClassifierRun, pseudo: float = 0.5):
    """One row per label and per label pair: counts and log2 enrichment (high/low) in the explanations
    and in the real crystals of the classifier's data (all its crystals, classed by the same median)."""
    nl = clf.n_labels
    names = periodic.label_names(clf.labelling)
    ex = {c: explanation_counts(doc["classes"][str(c)]["explanations"], nl) for c in (0, 1)}
    da = {c: crystal_counts(clf.graphs, np.flatnonzero(clf.y == c)) for c in (0, 1)}
    tri = np.tril_indices(nl)
    rows = []
    for kind in ("label", "pair"):
        if kind == "label":
            e_hi, e_lo, d_hi, d_lo = ex[1][0], ex[0][0], da[1][0], da[0][0]
            keys = [(names[i], "") for i in range(nl)]
        else:
            e_hi, e_lo, d_hi, d_lo = (x[1][tri] for x in (ex[1], ex[0], da[1], da[0]))
            keys = [(names[i], names[j]) for i, j in zip(*tri, strict=True)]
        le = enrichment(e_hi, e_lo, pseudo=pseudo)
        ld = enrichment(d_hi, d_lo, pseudo=pseudo)
        for k, (a, b) in enumerate(keys):
            rows.append({"kind": kind, "a": a, "b": b, "n_high_expl": int(e_hi[k]),
                         "n_low_expl": int(e_lo[k]), "log2_expl": le[k], "n_high_data": int(d_hi[k]),
                         "n_low_data": int(d_lo[k]), "log2_data": ld[k]})
    out = pd.DataFrame(rows)
    kept = {CLASS_NAMES[c]: {k: doc["classes"][str(c)].get(k)
                             for k in ("kept", "requested", "attempts", "keep_threshold")} for c in (0, 1)}
    out.attrs.update(property=clf.property, labelling=clf.labelling, pseudo=pseudo,
                     profile=doc.get("profile"), seed=doc.get("seed"), explanations=kept)
    return out


def enrichment_agreement(table, min_count: int = 3) -> dict:
    """Spearman correlation of explanation vs data enrichment, over labels and over pairs that occur at
    least ``min_count`` times in the explanations (NaN with fewer than 3 such rows)."""
    out = {}
    for kind in ("label", "pair"):
        t = table[(table["kind"] == kind) & ((table["n_high_expl"] + table["n_low_expl"]) >= min_count)]
        t = t.dropna(subset=["log2_expl", "log2_data"])
        rho = float(spearmanr(t["log2_expl"], t["log2_data"]).statistic) if len(t) >= 3 else float("nan")
        sign = float((np.sign(t["log2_expl"]) == np.sign(t["log2_data"])).mean()) if len(t) else float("nan")
        out[kind] = {"n": int(len(t)), "spearman": rho, "same_sign": sign}
    return out
