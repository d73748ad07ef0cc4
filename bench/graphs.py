"""Benchmark: CIF -> cached CGCNN graphs for the whole mirror (36,7xx structures) on this machine's cores.

`python -m bench graphs` (or `make bench BENCH=graphs`). Figures, each one JSON line (bench/__init__.emit):

- parse_throughput: CIFs parsed into Crystal arrays per second (lib.data.load_dataset, no cache).
- graph_throughput_k12 / _k8 / megnet_r4: graphs per second built from parsed crystals, cache written.
- end_to_end_k12 / _k8: structures per second from CIF to cached graphs (parse + build). Goal >= 150/s.
- reload_seconds_k12 / _k8: loading the whole cached GraphSet again. Goal <= 5 s.
- cache_mb_k12 / _k8: size of the cache file.
- peak_rss: peak resident memory of this process and of its largest worker. Goal < 4 GB.

Everything runs in a temporary directory, so nothing of the project's data/ is read or replaced.
Each line records the load average before and after, because the cores may be shared.
"""

from __future__ import annotations

import json
import lzma
import os
import sys
import tempfile
import time
from pathlib import Path

from bench import emit, peak_rss_gb

BENCH = "graphs"
N_JOBS = 2


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _parse_one(cif: str):
    import warnings

    from pymatgen.core import Structure

    from lib.structures import Crystal

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Crystal.from_structure(Structure.from_str(cif, fmt="cif"))


def _parse_mirror_fallback(mirror: Path, n_jobs: int) -> tuple[list[str], list]:
    """Without lib.data: read the mirror's JSON lines and parse every CIF once, on n_jobs processes."""
    import multiprocessing as mp

    ids, cifs = [], []
    with lzma.open(mirror / "mp_cgcnn_2020.jsonl.xz", "rt") as f:
        for line in f:
            rec = json.loads(line)
            ids.append(rec["material_id"])
            cifs.append(rec["cif"])
    with mp.get_context("fork" if sys.platform.startswith("linux") else "spawn").Pool(n_jobs) as pool:
        crystals = pool.map(_parse_one, cifs, chunksize=256)
    return ids, crystals


def main() -> None:
    from lib.graphs import build_graphs, cgcnn_params, megnet_params
    from lib.paths import default_mirror

    mirror = default_mirror()
    if mirror is None:
        print("bench graphs: no data mirror found (set COMPENDIUM_MIRROR or put it at ../shared/data)",
              file=sys.stderr)
        return
    common = {"cores": os.cpu_count(), "n_jobs": N_JOBS}
    with tempfile.TemporaryDirectory(prefix="bench-graphs-") as tmp:
        tmp = Path(tmp)
        load0 = _load()
        t0 = time.perf_counter()
        try:
            from lib.data import load_dataset

            df = load_dataset("cgcnn", source="mirror", mirror=mirror, cache_dir=tmp / "processed",
                              raw_dir=tmp / "raw", n_jobs=N_JOBS, progress=True, verbose=False)
            data, parse_path = df, "lib.data.load_dataset"
            n = len(df)
        except ImportError:
            ids, crystals = _parse_mirror_fallback(mirror, N_JOBS)
            data, parse_path = crystals, "bench fallback (lzma+json+pymatgen)"
            n = len(crystals)
        t_parse = time.perf_counter() - t0
        emit(BENCH, "parse_throughput", n / t_parse, "structures/s", seconds=round(t_parse, 2), n=n,
             parse_path=parse_path, load_before=load0, load_after=_load(), **common)

        kw = {} if parse_path.startswith("lib.data") else {"ids": ids}
        for label, params in (("k12", cgcnn_params(8.0, 12)), ("k8", cgcnn_params(8.0, 8)),
                              ("megnet_r4", megnet_params(4.0))):
            load0 = _load()
            t0 = time.perf_counter()
            gs = build_graphs(data, params, cache_dir=tmp / "graphs", n_jobs=N_JOBS, progress=True,
                              name="bench", on_isolated="keep", **kw)
            t_build = time.perf_counter() - t0
            extra = dict(params=params.as_dict(), n=len(gs), n_edges=int(gs.n_edges.sum()),
                         load_before=load0, load_after=_load(), **common)
            emit(BENCH, f"graph_throughput_{label}", n / t_build, "structures/s", seconds=round(t_build, 2),
                 **extra)
            if label.startswith("megnet"):
                continue
            emit(BENCH, f"end_to_end_{label}", n / (t_parse + t_build), "structures/s",
                 seconds=round(t_parse + t_build, 2), goal=">= 150", **extra)
            path = Path(gs.report["saved_to"])
            emit(BENCH, f"cache_mb_{label}", path.stat().st_size / 1e6, "MB", file=path.name, **common)
            del gs
            t0 = time.perf_counter()
            again = build_graphs(data, params, cache_dir=tmp / "graphs", n_jobs=N_JOBS, progress=False,
                                 name="bench", on_isolated="keep", **kw)
            t_load = time.perf_counter() - t0
            assert "loaded_from" in again.report, "the second build_graphs did not read the cache"
            emit(BENCH, f"reload_seconds_{label}", t_load, "s", goal="<= 5", n=len(again),
                 load_before=load0, load_after=_load(), **common)
            del again
        import resource

        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6
        emit(BENCH, "peak_rss", peak_rss_gb(), "GB", goal="< 4", self_gb=round(own, 3),
             largest_worker_gb=round(kids, 3), **common)
