"""SOAP baselines: descriptor throughput on the mirror and SOAP-SVR fit time against training-set size.

    python -m bench soap                       # the full 36,737 CGCNN structures, SVR at 2k, 8k, full
    SOAP_BENCH_N=5000 python -m bench soap     # descriptors for a random sample (rate extrapolated)
    SOAP_BENCH_SVR=2000,8000 python -m bench soap   # SVR sizes ("full" = the whole training split)
    SOAP_BENCH_DENSE=0 python -m bench soap    # skip the dense-input comparison

Figures (one JSON line each, appended to results/bench.jsonl): descriptors per second with both
cores and the time the whole mirror takes; the matrix's size and sparsity; the SVR's fit time on
the formation-energy training split (80:20, seed 0, standardised target, sklearn defaults C=1,
epsilon=0.1, gamma="scale") at each size, with its number of support vectors and libsvm iterations,
for the kernel cache we use (2,000 MB) and for sklearn's default 200 MB; the same fit on dense rows
(what dscribe gives without ``sparse=True``) at 2,000, extrapolated to the full split, to show where
the thesis's 19,000-42,000 s went; and the cost of one RBF kernel value in sparse and dense blocks. Every line carries the load
average, since other work may share the cores.
"""

from __future__ import annotations

import os
import time

import numpy as np


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _svr_fit(X, y, cache_size: float) -> tuple[float, object]:
    from sklearn.svm import SVR

    model = SVR(kernel="rbf", C=1.0, epsilon=0.1, gamma="scale", cache_size=cache_size)
    t0 = time.perf_counter()
    model.fit(X, (y - y.mean()) / y.std())
    return time.perf_counter() - t0, model


def main() -> None:
    import scipy.sparse as sps

    from bench import emit, peak_rss_gb
    from lib import soap
    from lib.data import load_dataset, split, target_frame

    prop = "formation_energy_per_atom"
    df = load_dataset("cgcnn", source="mirror", progress=False, verbose=False)
    frame = target_frame(df, prop)
    species = soap.dataset_species(list(df["structure"]))
    crystals = list(frame["structure"])
    n_all = len(crystals)
    n_jobs = os.cpu_count() or 1

    # --- descriptors: the whole mirror, or a random sample extrapolated
    n_desc = int(os.environ.get("SOAP_BENCH_N", n_all))
    sample = np.sort(np.random.default_rng(0).choice(n_all, size=min(n_desc, n_all), replace=False))
    load0 = _load()
    t0 = time.perf_counter()
    X = soap.compute_soap([crystals[i] for i in sample], species, n_jobs=n_jobs, progress=False)
    dt = time.perf_counter() - t0
    whole = len(sample) == n_all
    emit("soap", "descriptors_per_s", len(sample) / dt, "crystal/s", n=len(sample), n_jobs=n_jobs,
         wall_s=round(dt, 2), load=[load0, _load()], sample="all" if whole else "random sample")
    emit("soap", "mirror_descriptors_s", dt * n_all / len(sample), "s", n=n_all, n_jobs=n_jobs,
         extrapolated=not whole)
    st = soap.sparsity(X)
    emit("soap", "n_features", st["n_features"], "features", n_species=len(species))
    emit("soap", "nnz_per_crystal", st["nnz_mean"], "nonzeros", nnz_max=st["nnz_max"],
         density=st["density"], csr_mb=round(st["csr_mb"], 2), dense_mb=round(st["dense_mb"], 1))
    if not whole:  # the SVR needs every training row
        X = soap.compute_soap(crystals, species, n_jobs=n_jobs, progress=False)
    X = sps.csr_matrix(X)
    y = frame[prop].to_numpy(dtype=np.float64)

    # --- SOAP-SVR fit time against n
    train = split(n_all, seed=0, fractions=(0.8, 0.2))["train"]
    sizes = [s.strip() for s in os.environ.get("SOAP_BENCH_SVR", "2000,8000,full").split(",") if s.strip()]
    rng = np.random.default_rng(0)
    sparse_fit: dict[int, float] = {}
    for s in sizes:
        n = len(train) if s == "full" else min(int(s), len(train))
        idx = np.sort(rng.choice(train, size=n, replace=False)) if n < len(train) else train
        for cache in (2000.0, 200.0):  # ours, then sklearn's default (same result, other speed)
            load0 = _load()
            fit_s, model = _svr_fit(X[idx], y[idx], cache)
            if cache == 2000.0:
                sparse_fit[n] = fit_s
            emit("soap", "svr_fit_s", fit_s, "s", n_train=n, cache_size_mb=cache, n_support=len(model.support_),
                 n_iter=int(np.sum(model.n_iter_)), gamma=float(model._gamma), load=[load0, _load()],
                 threads=1, note="libsvm is single-threaded")
        if n == len(train):
            test = np.setdiff1d(np.arange(n_all), train)
            t0 = time.perf_counter()
            pred = model.predict(X[test]) * y[idx].std() + y[idx].mean()
            emit("soap", "svr_predict_per_s", len(test) / (time.perf_counter() - t0), "crystal/s",
                 n_test=len(test), test_mae=float(np.mean(np.abs(pred - y[test]))), unit_mae="eV/atom")

    # --- where the time goes: one kernel value, sparse vs dense rows
    from sklearn.metrics.pairwise import rbf_kernel

    a, b = X[train[:2000]], X[train[2000:4000]]
    for how, (u, v) in (("sparse", (a, b)), ("dense", (a.toarray(), b.toarray()))):
        t0 = time.perf_counter()
        rbf_kernel(u, v, gamma=0.02)
        dt = time.perf_counter() - t0
        emit("soap", f"{how}_kernel_ns", dt / (a.shape[0] * b.shape[0]) * 1e9, "ns/kernel value",
             block="2000x2000", how=f"sklearn rbf_kernel on {how} rows (a block at once; libsvm goes row by row)")
    if os.environ.get("SOAP_BENCH_DENSE", "1") != "0":
        idx = np.sort(np.random.default_rng(1).choice(train, size=2000, replace=False))
        load0 = _load()
        fit_s, model = _svr_fit(X[idx].toarray(), y[idx], 200.0)
        emit("soap", "svr_fit_dense_s", fit_s, "s", n_train=2000, cache_size_mb=200.0,
             n_support=len(model.support_), load=[load0, _load()],
             note="dense rows (dscribe's default sparse=False) at sklearn's default cache")
        if 2000 in sparse_fit and len(train) in sparse_fit:
            growth = sparse_fit[len(train)] / sparse_fit[2000]
            emit("soap", "svr_fit_dense_full_s", fit_s * growth, "s", n_train=len(train), extrapolated=True,
                 how="dense fit at 2,000 x the sparse fit's measured growth from 2,000 to the full split")
    emit("soap", "peak_rss", peak_rss_gb(), "GB")


if __name__ == "__main__":
    main()
