"""The label classifier that XGNN explains: a CGCNN on one-hot periodic labels, connectivity only.

A property is discretised at the median of its training split (class 0 "low", class 1 "high"); atoms
carry only their group (18 labels) or period (7); messages are averaged (see ``lib.xgnn``'s docstring).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lib import periodic
from lib.data.table import split, target_frame
from lib.graphs import GraphBatch, GraphSet, build_graphs, cgcnn_params
from lib.models.cgcnn import CGCNN
from lib.profiles import get_profile
from lib.train import TrainConfig, fit, seed_everything


class LabelledGraphs:
    """A :class:`~lib.graphs.GraphSet` seen through a labelling: ``batch()`` turns atomic numbers into
    label indices (group − 1 or period − 1) for the classifier; the GraphSet itself is not changed.

    Quacks like a GraphSet for ``lib.train.fit``: ``batch``, ``__len__``, ``params``, ``material_ids``.
    """

    def __init__(self, graphs: GraphSet, labelling: str) -> None:
        self.graphs = graphs
        self.labelling = periodic.check_labelling(labelling)
        self.n_labels = periodic.n_labels(labelling)
        z = graphs.numbers
        bad = (z < 1) | (z > periodic.Z_MAX)
        if bad.any():
            atom = int(np.flatnonzero(bad)[0])
            crystal = int(np.searchsorted(graphs.atom_ptr, atom, side="right") - 1)
            raise ValueError(f"{graphs.material_ids[crystal]} has atomic number {int(z[atom])}, which has no "
                             f"periodic {labelling}; drop it from the table first")
        self._table = torch.from_numpy(periodic.label_index_table(labelling).copy())

    @property
    def params(self):
        return self.graphs.params

    @property
    def material_ids(self) -> np.ndarray:
        return self.graphs.material_ids

    def __len__(self) -> int:
        return len(self.graphs)

    def __repr__(self) -> str:
        return f"LabelledGraphs({self.labelling}, {self.graphs!r})"

    def batch(self, indices) -> GraphBatch:
        """``graphs.batch(indices)`` with ``numbers`` replaced by label indices (N,) in 0..n_labels−1."""
        b = self.graphs.batch(indices)
        return dataclasses.replace(b, numbers=self._table.index_select(0, b.numbers))

    def atom_labels(self) -> np.ndarray:
        """(total_atoms,) label index of every atom of the set, in atom order."""
        return periodic.label_index_table(self.labelling)[self.graphs.numbers]


def discretise(values: np.ndarray, train_idx: np.ndarray) -> tuple[np.ndarray, float]:
    """(labels, threshold): class 1 where the value is above the training split's median, else 0."""
    values = np.asarray(values, dtype=np.float64)
    thr = float(np.median(values[np.asarray(train_idx)]))
    return (values > thr).astype(np.int64), thr


def make_classifier(labelling: str, **kwargs: Any):
    """A CGCNN classifier on one-hot labels, connectivity only (``use_distance=False``), neighbours averaged
    (``aggregate="mean"``, see the module docstring).

    kwargs go to :class:`lib.models.cgcnn.CGCNN` (defaults: the thesis's Table 3 sizes).
    """
    n = periodic.n_labels(labelling)
    kwargs = {"atom_features": np.eye(n, dtype=np.float32), "use_distance": False, "classification": True,
              "aggregate": "mean", **kwargs}
    return CGCNN(**kwargs)


#: how the label classifiers train, over lib.train's defaults (the thesis's SGD, lr 0.01, momentum 0.9):
#: batches of 64 instead of 256. On the quick profile's 1,200 training crystals, batches of 256 make 5
#: steps an epoch; the epoch with the best validation accuracy was then a classifier that gave every test
#: crystal p(high band gap) = 0.43-0.54 (accurate, but never confident), and no generated graph reached
#: p > 0.8 in 30,000 tries. With 64: 68% of the test crystals above 0.8 (0.80 test accuracy), and the
#: generators find explanations for both classes.
CLASSIFIER_TRAINING = {"batch_size": 64}


def classifier_model_name(labelling: str) -> str:
    """The ``model`` of a classifier's run record: ``cgcnn_cls_group`` or ``cgcnn_cls_period``."""
    return f"cgcnn_cls_{periodic.check_labelling(labelling)}"


@dataclass
class ClassifierRun:
    """A trained (or loaded) label classifier with the data it was trained on."""

    model: nn.Module  # eval mode; forward(GraphBatch of label indices) -> (B, 2) log-probabilities
    property: str
    labelling: str
    threshold: float  # class 1: value > threshold (the training split's median)
    graphs: LabelledGraphs
    values: np.ndarray  # (n,) the property, aligned with graphs
    y: np.ndarray  # (n,) class labels
    split: dict[str, np.ndarray]
    labels_seen: np.ndarray  # label indices that occur in the training crystals
    record: dict

    @property
    def n_labels(self) -> int:
        return periodic.n_labels(self.labelling)

    @property
    def test_accuracy(self) -> float:
        return float(self.record["metrics"]["test"]["accuracy"])

    def summary(self) -> dict:
        """One row for a table: run, threshold, class balance, split sizes, accuracies."""
        tr = self.y[self.split["train"]]
        return {
            "run": self.record["run"], "property": self.property, "labelling": self.labelling,
            "threshold": self.threshold, "unit": self.record.get("unit"),
            "train_share_high": float(tr.mean()), **{f"n_{k}": int(len(v)) for k, v in self.split.items()},
            "val_accuracy": float(self.record["metrics"]["val"]["accuracy"]),
            "test_accuracy": self.test_accuracy, "epochs": self.record.get("epochs_run"),
            "train_time_s": self.record.get("train_time_s"),
        }


def train_classifier(
    df,
    property: str,
    labelling: str,
    profile: Any = "smoke",
    seed: int = 0,
    *,
    graph_params=None,
    runs_dir: str | Path | None = None,
    n_jobs: int = 2,
    progress: bool = True,
    model_kwargs: dict | None = None,
    config=None,
    **overrides: Any,
) -> ClassifierRun:
    """Train the label classifier of ``property`` (or go on from / reload its saved state).

    The profile's subsample (``n_max``) of the rows that have the property, their CGCNN graphs (cached
    by ``lib.graphs``), the random 80:10:10 split of ``seed``, the median split of the training values,
    then ``lib.train.fit`` with the classification task and the profile's epochs. The run record is
    ``<runs_dir>/cgcnn_cls_<labelling>_<property>_<profile>_s<seed>.json`` (default ``results/runs``) and
    holds the test accuracy; a finished run is reloaded from its saved state instead of retrained.
    ``overrides`` are TrainConfig fields; without ``config``, :data:`CLASSIFIER_TRAINING` applies first.
    """
    prof = get_profile(profile)
    periodic.check_labelling(labelling)
    frame = target_frame(df, property, n_max=prof.n_max, seed=seed)
    params = graph_params or cgcnn_params()
    gs = build_graphs(frame, params, name=f"cgcnn_{property}", n_jobs=n_jobs, progress=progress)
    values = frame[property].to_numpy(dtype=np.float64)[gs.source_index]
    sp = split(len(gs), seed)
    y, thr = discretise(values, sp["train"])
    lg = LabelledGraphs(gs, labelling)
    crystal_of_atom = np.repeat(np.arange(len(gs)), gs.n_atoms)
    train_atoms = np.isin(crystal_of_atom, sp["train"])
    seen = np.unique(lg.atom_labels()[train_atoms])

    seed_everything(seed)
    model = make_classifier(labelling, **(model_kwargs or {}))
    base = {"task": "classification", "epochs": prof.epochs,
            **(CLASSIFIER_TRAINING if config is None else {})}
    cfg = (config or TrainConfig()).replace(**{**base, **overrides})
    extra = {"xgnn": {
        "labelling": labelling, "threshold": thr,
        "class_rule": "class 1 (high): value > the training split's median; class 0 (low): value <= it",
        "train_share_high": float(y[sp["train"]].mean()), "labels_seen": (seen + 1).tolist(),
        "edges": "CGCNN k-nearest graph, connectivity only (constant edge feature), messages averaged",
    }}
    record = fit(model, lg, y, sp, cfg, property=property, seed=seed, profile=prof,
                 model_name=classifier_model_name(labelling), runs_dir=runs_dir,
                 content_hash=frame.attrs.get("content_hash"), progress=progress, extra=extra)
    model.eval()
    return ClassifierRun(model, property, labelling, thr, lg, values, y, sp, seen, record)
