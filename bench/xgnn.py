"""Benchmark: XGNN explanations of one property and labelling at the thesis's scale, on a quick classifier.

`python -m bench xgnn` (or `make bench BENCH=xgnn`). Environment: BENCH_XGNN_PROPERTY (band_gap),
BENCH_XGNN_LABELLING (group), BENCH_XGNN_CLASSIFIER_PROFILE (quick).

The label classifier of the quick profile (3,000 crystals, 15 epochs) is trained, or read back from its
saved state, before the clock starts. Timed: both generators trained for the thesis profile's episodes
(2,000 each) and 150 explanations per class kept at p > 0.8 (300 in all), as ``lib.xgnn.explain_classifier``
does them. Goal: <= 10 minutes on 2 cores. Figures (one JSON line each, bench/__init__.emit):

- explanations_seconds: the whole timed part; train_seconds_class0/1 and explain_seconds_class0/1.
- acceptance_class0/1: share of generated graphs kept; kept_class0/1.
- classifier_test_accuracy: of the classifier explained.

Output goes to a temporary directory (results/xgnn is not replaced). Each line records the load average
before and after, because the cores may be shared.
"""

from __future__ import annotations

import os
import tempfile
import time

from bench import emit, peak_rss_gb

BENCH = "xgnn"


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    import torch

    from lib import data, xgnn
    from lib.profiles import get_profile

    prop = os.environ.get("BENCH_XGNN_PROPERTY", "band_gap")
    labelling = os.environ.get("BENCH_XGNN_LABELLING", "group")
    clf_profile = os.environ.get("BENCH_XGNN_CLASSIFIER_PROFILE", "quick")
    thesis = get_profile("thesis")
    df = data.load_dataset("cgcnn", progress=False, verbose=False)
    clf = xgnn.train_classifier(df, prop, labelling, clf_profile, 0, progress=False)
    common = {"property": prop, "labelling": labelling, "classifier_profile": clf_profile,
              "per_class": thesis.xgnn_per_class, "episodes": xgnn.training_episodes(thesis),
              "torch_threads": xgnn.XGNNConfig().num_threads,
              "torch_default_threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory(prefix="bench-xgnn-") as tmp:
        load0 = _load()
        t0 = time.perf_counter()
        doc = xgnn.explain_classifier(clf, thesis, 0, per_class=thesis.xgnn_per_class,
                                      episodes=xgnn.training_episodes(thesis), out_dir=tmp, reuse=False,
                                      progress=True)
        dt = time.perf_counter() - t0
        load1 = _load()
    emit(BENCH, "explanations_seconds", dt, "s", kept=sum(c["kept"] for c in doc["classes"].values()),
         load_before=load0, load_after=load1, goal="<= 600 s", **common)
    for c, cls in doc["classes"].items():
        emit(BENCH, f"train_seconds_class{c}", cls["train_time_s"], "s", **common)
        emit(BENCH, f"explain_seconds_class{c}", cls["time_s"], "s", attempts=cls["attempts"], **common)
        emit(BENCH, f"acceptance_class{c}", cls["acceptance"], "fraction", kept=cls["kept"],
             unique=cls["unique"], **common)
    emit(BENCH, "classifier_test_accuracy", clf.test_accuracy, "fraction", run=clf.record["run"], **common)
    emit(BENCH, "peak_rss", peak_rss_gb(), "GB", **common)
