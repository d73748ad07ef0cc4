"""The sweep: runs phase by phase, locally in parallel or on Dask; what is done is skipped, stale records
are trained again."""

from __future__ import annotations

import json
import os
import platform
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from lib import models, records
from lib.data.load import load_dataset
from lib.data.sources.base import DataUnavailable
from lib.paths import ARCHIVE_DIR, ROOT, RUNS_DIR
from lib.profiles import Profile, get_profile
from lib.sweep.execute import _LIVE, _LIVE_LOCK, _STOPPING, Result, _kill, execute_run
from lib.sweep.plan import NOTEBOOK_OUT, STATUSES, Run, stage_notebooks

# ----------------------------------------------------------------------------- the sweep


def default_jobs() -> int:
    """Cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class Summary:
    """The outcome of a sweep: one Result per run, the wall time and how it was executed."""

    results: list[Result]
    wall_s: float
    executor: str  # "local" or the scheduler's address
    jobs: int | None
    threads: int
    profile: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.counts = dict(Counter(r.status for r in self.results))

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if r.status in ("failed", "blocked")]

    @property
    def exit_code(self) -> int:
        """1 if any run failed or was blocked by a failure, else 0."""
        return 1 if self.failed else 0

    def format(self) -> str:
        """A few lines: counts, what failed (with its executed notebook), which notebooks are missing."""
        order = [s for s in STATUSES if s in self.counts]
        head = ", ".join(f"{self.counts[s]} {s}" for s in order) or "nothing to run"
        where = f"{self.jobs} runs x {self.threads} thread(s)" if self.executor == "local" else \
            f"Dask at {self.executor}, {self.threads} thread(s) per run"
        prof = f" ({self.profile})" if self.profile else ""
        lines = [f"sweep{prof}: {head} in {self.wall_s:.0f} s ({where})"]
        ran = [r for r in self.results if r.status == "ok"]
        if ran:
            n, secs = len(ran), sum(r.seconds for r in ran)
            lines.append(f"  ran: {n} run{'s' if n > 1 else ''}, {secs:.0f} s of run time")
        for r in self.results:
            if r.status == "failed":
                lines.append(f"  FAILED  {r.name}: {r.message}")
                if r.output:
                    lines.append(f"          see {r.output} and {NOTEBOOK_OUT}/logs/{r.name}.log")
        blocked = [r for r in self.results if r.status == "blocked"]
        if blocked:
            n = len(blocked)
            why = "; ".join(sorted({r.message for r in blocked}))
            lines.append(f"  BLOCKED {n} run{'s' if n > 1 else ''}: {why}")
        missing = Counter(r.message for r in self.results if r.status == "missing")
        for msg, n in missing.items():
            lines.append(f"  MISSING {n} run{'s' if n > 1 else ''} not run: {msg}")
        skipped = Counter(r.stage for r in self.results if r.status == "skipped")
        if skipped:
            lines.append("  skipped (already done): " + ", ".join(f"{stage_notebooks().get(s, s)} x{n}"
                                                                   for s, n in sorted(skipped.items())))
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"profile": self.profile, "wall_s": self.wall_s, "executor": self.executor, "jobs": self.jobs,
                "threads": self.threads, "counts": self.counts, "host": platform.node(),
                "load_avg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "results": [asdict(r) for r in self.results]}


def stale_records(runs: Sequence[Run], root: Path) -> dict[str, str]:
    """name -> why, for the training runs (03-05) whose record was made from other data than the table holds.

    A record cites the content hash of the rows it trained on (``target_frame``: ids, structures, target
    values). It is recomputed from the processed table (the one 01 builds; built here if it is missing) with
    the record's own profile settings and seed; a difference means the data changed since (a new mirror, a
    new rule in lib.data), and the run is trained again instead of being skipped. Records of the MEGNet
    paper's dataset and records without a hash are taken as they are; without any data nothing is stale.
    """
    todo = [r for r in runs if r.record and r.model and (root / r.record).exists()]
    if not todo:
        return {}
    try:
        df = load_dataset("cgcnn", source="auto", progress=False, verbose=False)
    except (DataUnavailable, OSError, ValueError):  # no data (yet): 01 reports it
        return {}
    hashes: dict[tuple, str] = {}
    out = {}
    for r in todo:
        try:
            rec = json.loads((root / r.record).read_text())
        except (OSError, ValueError):
            continue  # an unreadable record is the notebook's business
        if not rec.get("content_hash") or rec.get("dataset", "cgcnn") != "cgcnn":
            continue
        if rec.get("property") not in df:
            continue
        info = models.get(r.model)
        try:  # the record's own profile settings: the rows it was trained on then
            settings = rec.get("profile_settings") or get_profile(rec["profile"]).as_dict()
            prof = Profile(**{**settings, "seeds_gnn": tuple(settings["seeds_gnn"]),
                              "seeds_soap": tuple(settings["seeds_soap"])})
            key = (rec["property"], info.n_rows(prof), int(rec["seed"]) if info.n_rows(prof) else None)
        except (KeyError, ValueError, TypeError):
            continue  # a record without its settings cannot be compared: taken as it is
        if key not in hashes:
            hashes[key] = info.training_rows(df, rec["property"], prof, rec["seed"]).attrs["content_hash"]
        if hashes[key] != rec["content_hash"]:
            out[r.name] = f"{r.record} was trained on other data (the table changed since): training again"
    return out


def archived_runs(runs: Sequence[Run], root: Path) -> list[str]:
    """The training runs with no record in results/runs/ but one in the committed archive (records/,
    lib.records.archive): finished on another machine or in an earlier working session."""
    out, in_archive = [], records.archived(root / ARCHIVE_DIR)
    for r in runs:
        if not (r.record and r.model) or Path(r.record).parent.as_posix() != RUNS_DIR:
            continue
        if not (root / r.record).exists() and Path(r.record).stem in in_archive:
            out.append(Path(r.record).stem)
    return out


#: the end of the reason why a run with a record runs again (its executed copy is missing or unfinished)
_AGAIN = ": running it again"


def executed_copy_done(path: Path) -> bool:
    """Whether ``path`` is a finished executed notebook: it exists, reads as JSON, and papermill, if it wrote
    its metadata, finished it (an end time) without an error. A copy that is missing, truncated, still
    running or killed (no end time), or whose run raised, is not."""
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    pm = nb.get("metadata", {}).get("papermill") if isinstance(nb, dict) else None
    if not isinstance(pm, dict):
        return isinstance(nb, dict)  # executed some other way: taken as it is
    return bool(pm.get("end_time")) and not pm.get("exception")


def _archived_names(runs: Sequence[Run], root: Path) -> set[str]:
    """The runs whose record is one of the archive's (records/): finished on another machine or in an earlier
    session, so their executed copy is there, not here, and their checkpoint is not archived."""
    in_archive = records.archived(root / ARCHIVE_DIR)
    return {r.name for r in runs if r.record and r.model and Path(r.record).parent.as_posix() == RUNS_DIR
            and Path(r.record).stem in in_archive}


def _needed(runs: Sequence[Run], root: Path, force: bool) -> dict[str, tuple[bool, str]]:
    """name -> (to run?, why (not)).

    A run is done when its record exists and is not stale (stale_records) AND its executed copy
    (results/notebooks/<name>.ipynb) is there and finished (:func:`executed_copy_done`): a record without
    its executed copy (left by `make test`'s nbval runs, which execute the notebooks with their default
    parameters but keep no copy, by lib.sweep.direct, or by a run killed after its training cell) is run
    again, and the notebook finds the finished training and reuses it (03/04; 05 fits again, 07 reuses its
    explanations). The one exception: a record restored from the archive (records/) counts as done on its
    own, since its notebook would train again.
    01/02 (no record): while a reader is to do, or while their own executed copy is missing.

    A reader whose notebook is missing does not count: it will not run, so it needs nothing.
    """
    stale = {} if force else stale_records(runs, root)
    archived = set() if force else _archived_names(runs, root)
    dependents: dict[str, list[str]] = {}
    for r in runs:
        for n in r.needs:
            dependents.setdefault(n, []).append(r.name)
    out: dict[str, tuple[bool, str]] = {}
    active: dict[str, bool] = {}  # will really run

    def copied(r: Run) -> bool:  # read only where it decides
        return r.name in archived or executed_copy_done(root / r.output)

    for r in reversed(runs):  # dependents come later in the plan
        if r.record is not None:
            recorded = (root / r.record).exists() and not force and r.name not in stale
            if recorded and copied(r):
                out[r.name] = (False, f"{r.record} exists")
            elif recorded:
                out[r.name] = (True, f"{r.record} exists, but not its finished executed copy {r.output}"
                                     f"{_AGAIN}")
            else:
                out[r.name] = (True, stale.get(r.name, ""))
        else:
            deps = [d for d in dependents.get(r.name, []) if d in out]
            if deps and not any(active[d] for d in deps) and not force and copied(r):
                out[r.name] = (False, "every run that reads it is done")
            else:
                out[r.name] = (True, "")
        active[r.name] = out[r.name][0] and (root / r.notebook).exists()
    return out


def connect(scheduler: str):
    """A Dask client of the scheduler at ``scheduler``, or a ConnectionError that says how to start one."""
    from dask.distributed import Client  # here: dask is needed only for a cluster

    try:
        return Client(scheduler, timeout=30)
    except (OSError, TimeoutError) as err:
        raise ConnectionError(
            f"could not reach the Dask scheduler at {scheduler} ({err}); start one with `dask scheduler` "
            f"and workers with `dask worker {scheduler} --nthreads 1 --nworkers N` (README: the sweep on "
            "a Dask cluster)") from None


def _workers(client: Any, scheduler: str | None, jobs: int | None, threads: int | None, cores: int
             ) -> tuple[int | None, int, str]:
    """(parallel runs, threads per run, executor): on Dask one thread unless told; locally one run per core
    with one thread each, or what ``jobs`` or ``threads`` alone leave of the cores."""
    if client is not None:
        executor = str(getattr(client, "scheduler", None) and client.scheduler.address or scheduler)
        return None, int(threads or 1), executor
    if jobs is None and threads is None:
        jobs, threads = cores, 1
    elif jobs is None:
        jobs = max(1, cores // int(threads))
    elif threads is None:
        threads = max(1, cores // int(jobs))
    return int(jobs), int(threads), "local"


def _plan_needs(runs: Sequence[Run], root: Path, force: bool, dry_run: bool, echo: Callable[[str], None]
                ) -> dict[str, tuple[bool, str]]:
    """What is to run (``_needed``), once the archive's records of these runs are restored (a dry run only
    says they would be); a stale record is said, with why it is trained again."""
    archived = [] if force else archived_runs(runs, root)
    if archived and not dry_run:  # the archive's records count as done (stale ones are trained again below)
        restored = records.restore(runs_dir=root / RUNS_DIR, archive_dir=root / ARCHIVE_DIR, names=archived)
        n_rec = sum(p.suffix == ".json" for p in restored)
        parked = f", {len(restored) - n_rec} parked state(s)/checkpoint(s)" if len(restored) > n_rec else ""
        echo(f"  {n_rec} run record(s){parked} restored from {ARCHIVE_DIR}/ (finished elsewhere or earlier; "
             "--force trains them again)")
    needed = _needed(runs, root, force)
    if dry_run:
        for name in (r.name for r in runs if r.record and Path(r.record).stem in archived):
            needed[name] = (False, f"archived in {ARCHIVE_DIR}/ (restored when the sweep runs)")
    again = [name for name, (todo, why) in needed.items() if todo and why.endswith(_AGAIN)]
    for name, (todo, why) in needed.items():
        if todo and why and name not in again and not dry_run:  # a stale record: say why it is trained again
            echo(f"  {name}: {why}")
    if again and not dry_run:
        echo(f"  {len(again)} run(s) have a record but no finished executed copy in {NOTEBOOK_OUT}/ "
             "(`make test`'s nbval keeps none): running them again to write it (a finished GNN training is "
             "reused)")
    return needed


def _settled(r: Run, todo: bool, why: str, results: dict[str, Result], root: Path, dry_run: bool
             ) -> Result | None:
    """The result of a run that is not executed (skipped, no notebook, blocked, planned); None: run it."""
    if not todo:
        out = r.output if (root / r.output).exists() else None
        return Result(r.name, r.stage, "skipped", message=why, output=out, record=r.record)
    if not (root / r.notebook).exists():
        return Result(r.name, r.stage, "missing", message=f"{r.notebook} not found (not landed yet?)")
    bad = [n for n in r.needs if n in results and results[n].status in ("failed", "blocked")]
    if bad:
        return Result(r.name, r.stage, "blocked", message=f"needs {', '.join(bad)}, which failed",
                      record=r.record)
    if dry_run:
        return Result(r.name, r.stage, "planned", output=r.output, record=r.record, message=why)
    return None


def _on_dask(client: Any, batch: list[Run], run_root: str | None, threads: int, timeout: float | None,
             token: str, futures: dict, results: dict[str, Result], report: Callable[[Result], None]) -> None:
    """One phase's runs as Dask tasks (``futures`` holds them, so that an interrupt can cancel them)."""
    from dask.distributed import as_completed  # here: dask is needed only for a cluster

    futures.clear()
    futures.update({client.submit(execute_run, r, run_root, threads, timeout, key=f"{r.name}-{token}",
                                  pure=False): r for r in batch})
    for fut in as_completed(futures):
        r = futures[fut]
        try:
            res = fut.result()
        except Exception as err:  # noqa: BLE001 - a lost worker is a failed run, not a crash
            res = Result(r.name, r.stage, "failed", message=f"Dask task failed: {err!r}"[:500],
                         output=r.output, record=r.record)
        results[r.name] = res
        report(res)


def _on_pool(pool: ThreadPoolExecutor, batch: list[Run], run_root: str | None, threads: int,
             timeout: float | None, results: dict[str, Result], report: Callable[[Result], None]) -> None:
    """One phase's runs on the local pool, reported as each ends."""
    futs = {pool.submit(execute_run, r, run_root, threads, timeout): r for r in batch}
    pending = set(futs)
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for fut in done:
            res = fut.result()
            results[futs[fut].name] = res
            report(res)


def _stop_all(client: Any, futures: dict, echo: Callable[[str], None]) -> None:
    """On an interrupt: kill the local runs and cancel the queued Dask tasks."""
    with _LIVE_LOCK:
        _STOPPING.set()
        live = list(_LIVE)
    for proc in live:
        _kill(proc)
    if client is not None and futures:
        client.cancel(list(futures))  # the queued ones; a run already started on a worker goes on
        echo("interrupted: queued Dask tasks cancelled; runs already started on workers go on to the end")


def _write_summary(summary: Summary, root: Path, profile: str) -> None:
    d = summary.as_dict()
    records.write_json(root / NOTEBOOK_OUT / f"sweep_{profile}.json", d)
    with open(root / NOTEBOOK_OUT / "sweeps.jsonl", "a") as f:  # one line per sweep, for timings
        f.write(json.dumps({k: v for k, v in d.items() if k != "results"}) + "\n")


def sweep(
    runs: Sequence[Run],
    *,
    jobs: int | None = None,
    threads: int | None = None,
    client: Any = None,
    scheduler: str | None = None,
    root: str | Path | None = None,
    force: bool = False,
    dry_run: bool = False,
    timeout: float | None = None,
    profile: str | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> Summary:
    """Execute ``runs`` phase by phase; runs of a phase in parallel, locally or on a Dask cluster.

    jobs, threads : local parallel runs and threads per run (default: one run per core, 1 thread each,
        and a phase with fewer runs than jobs (01, 02, 06) shares the cores among them; ``threads``
        alone -> cores // threads runs). On Dask ``threads`` defaults to 1 (start workers with
        ``--nthreads 1`` and as many worker processes as cores).
    client, scheduler : a ``dask.distributed.Client``, or a scheduler address to connect one to.
    root : project root the runs' paths are relative to (default lib.paths.ROOT; on Dask workers None
        means each worker's own checkout).
    force : run even the runs that are done.  dry_run : report what would run, run nothing.
    timeout : seconds per run before it is killed and counted as failed.
    """
    t_start = time.perf_counter()
    root_path = Path(root) if root is not None else ROOT
    echo = echo or (lambda s: print(s, flush=True))
    own_client = connect(scheduler) if client is None and scheduler else None
    client = client if client is not None else own_client
    cores = default_jobs()
    threads_given = threads is not None
    jobs, threads, executor = _workers(client, scheduler, jobs, threads, cores)
    # the worker resolves its own root when none was given (checkouts mounted at different paths)
    run_root = str(root_path) if (root is not None or client is None) else None
    needed = _plan_needs(runs, root_path, force, dry_run, echo)
    results: dict[str, Result] = {}
    pool = ThreadPoolExecutor(max_workers=jobs) if (client is None and not dry_run) else None
    token, bar, futures = uuid.uuid4().hex[:8], None, {}
    try:
        todo_total = sum(1 for r in runs if needed[r.name][0])
        bar = tqdm(total=todo_total, desc=f"sweep {profile or ''}".strip(), unit="run",
                   disable=not progress or dry_run or todo_total == 0, dynamic_ncols=True)
        for ph in sorted({r.phase for r in runs}):
            batch = []
            for r in (r for r in runs if r.phase == ph):
                res = _settled(r, *needed[r.name], results, root_path, dry_run)
                if res is None:
                    batch.append(r)
                    continue
                results[r.name] = res
                if res.status in ("missing", "blocked"):
                    bar.update(1)
            if not batch:
                continue
            if client is not None:
                _on_dask(client, batch, run_root, threads, timeout, token, futures, results,
                         lambda res: _report(res, bar, echo))
            else:
                # a phase with fewer runs than jobs (01, 02, 06) gives each run more threads, unless told
                t_run = threads if threads_given else max(threads, cores // min(jobs, len(batch)))
                _on_pool(pool, batch, run_root, t_run, timeout, results, lambda res: _report(res, bar, echo))
    except KeyboardInterrupt:
        _stop_all(client, futures, echo)
        raise
    finally:
        if bar is not None:
            bar.close()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if own_client is not None:
            own_client.close()
    summary = Summary([results[r.name] for r in runs if r.name in results], time.perf_counter() - t_start,
                      executor, jobs, threads, profile)
    if not dry_run and profile:
        _write_summary(summary, root_path, profile)
    return summary


def _report(res: Result, bar, echo: Callable[[str], None]) -> None:
    line = f"{res.status:7s} {res.name}  {res.seconds:6.1f} s"
    if res.status != "ok":
        line += f"  {res.message}"
    if bar is not None and not bar.disable:
        bar.write(line)
        bar.update(1)
    else:
        echo(line)
