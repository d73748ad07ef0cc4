"""The sweep behind `make all`: every notebook run of a profile, through papermill, in order, in parallel.

    python -m lib.sweep --profile quick                      # this machine: runs in parallel up to the cores
    python -m lib.sweep --profile quick --only 03,04 --properties band_gap --dry-run
    python -m lib.sweep --profile thesis --dask-scheduler tcp://host:8786   # every run a Dask task

A *run* is one execution of one notebook with its parameters; it writes one executed copy,
``results/notebooks/<name>.ipynb``, named by notebook, property, model/labelling, profile and seed
(``03_cgcnn_band_gap_quick_s0``, ``05_soap_svr_band_gap_quick_s0``, ``07_xgnn_band_gap_group_quick_s0``,
``01_fetch_quick``). :func:`plan` lists the runs of a profile; :func:`sweep` executes them in five
phases, each finished before the next starts:

    01_fetch -> 02_graphs -> 03_cgcnn, 04_megnet, 05_soap (each property, seed, model) -> 06 -> 07_xgnn

A run whose record exists (``results/runs/<model>_<property>_<profile>_s<seed>.json``, or
``results/xgnn/<property>_<labelling>_<profile>_s<seed>.json`` for 07) is skipped, so an interrupted
sweep resumes where it stopped; 01 and 02 (which have no record: they fill caches) run only while a
run that reads them is still to do, and 06 always runs (it only reads records). A failed run keeps
its executed notebook with the error and a log beside it (``results/notebooks/logs/<name>.log``);
the runs that need it are reported as blocked, everything else goes on, and the sweep ends with a
summary (also written to ``results/notebooks/sweep_<profile>.json``, and one line of it appended to
``results/notebooks/sweeps.jsonl``), with a non-zero exit status if any run failed. A stage whose
notebook is not there (yet) is reported as missing, not as a failure.

Each run is a papermill subprocess whose kernel gets ``OMP_NUM_THREADS`` (and the MKL/OpenBLAS/numexpr/
numba/loky equivalents) set to ``threads``, so ``jobs`` runs x ``threads`` threads never
oversubscribe the machine; on a Dask cluster the same function runs on the workers, in the project
checkout they share (``COMPENDIUM_ROOT``), and the records they write land in the same results/runs/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from lib import models, records
from lib.data.load import load_dataset
from lib.data.sources.base import DataUnavailable
from lib.data.targets import TARGETS
from lib.paths import ROOT, XGNN_DIR
from lib.profiles import PROFILES, Profile, get_profile
from lib.xgnn.analysis import explanations_path

#: the stages that train no model of the table: stage id -> notebook (under notebooks/)
FIXED_STAGES: dict[str, str] = {
    "01": "01_fetch",
    "02": "02_graphs",
    "06": "06_benchmark",
    "07": "07_xgnn",
    "08": "08_cathodes",
}
XGNN_LABELLINGS = ("group", "period")
#: XGNN properties of every profile; the other properties are explained in every profile but smoke
XGNN_ALWAYS = ("band_gap", "formation_energy_per_atom")
NOTEBOOK_OUT = "results/notebooks"
#: thread-count variables set in each run's kernel environment
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMBA_NUM_THREADS", "LOKY_MAX_CPU_COUNT", "COMPENDIUM_THREADS")
STATUSES = ("ok", "failed", "blocked", "skipped", "missing", "planned")


def stage_notebooks() -> dict[str, str]:
    """Stage id -> notebook: the fixed stages and one per model stage of lib.models.MODEL_TABLE."""
    out = dict(FIXED_STAGES)
    for m in models.MODEL_TABLE.values():
        out.setdefault(m.stage, m.notebook)
    return dict(sorted(out.items()))


def phases() -> tuple[tuple[str, ...], ...]:
    """Stages in the order they run; the stages of one phase run side by side (every model at once)."""
    trained = tuple(sorted({m.stage for m in models.MODEL_TABLE.values()}))
    return (("01",), ("02",), trained, ("06",), ("07", "08"))


@dataclass(frozen=True)
class Run:
    """One papermill execution: a notebook, its parameters, its executed copy and the record it writes.

    Paths are relative to the project root (absolute when outside it), so the same Run is valid on
    any machine that has the checkout, wherever it is mounted.
    """

    name: str  # stem of the executed notebook: "03_cgcnn_band_gap_quick_s0"
    stage: str  # "01".."07"
    notebook: str  # input notebook, e.g. "notebooks/03_cgcnn.ipynb"
    params: tuple[tuple[str, Any], ...]  # papermill parameters, in order
    record: str | None = None  # the file whose existence marks the run done; None: no record (01, 02, 06)
    needs: tuple[str, ...] = ()  # names of runs that must not have failed for this one to start
    model: str | None = None  # the lib.models.MODEL_TABLE row a training run trains

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def output(self) -> str:
        """The executed notebook, relative to the root."""
        return f"{NOTEBOOK_OUT}/{self.name}.ipynb"

    @property
    def log(self) -> str:
        """papermill's messages (the traceback of a failure), relative to the root."""
        return f"{NOTEBOOK_OUT}/logs/{self.name}.log"

    @property
    def phase(self) -> int:
        order = phases()
        return next((i for i, p in enumerate(order) if self.stage in p), len(order))


@dataclass
class Result:
    """What became of one run."""

    name: str
    stage: str
    status: str  # ok | failed | blocked | skipped | missing | planned
    seconds: float = 0.0
    message: str = ""
    output: str | None = None  # executed notebook (relative to the root)
    record: str | None = None
    host: str = ""
    threads: int | None = None


# ----------------------------------------------------------------------------- the plan


def _stage_id(s: str) -> str:
    """'3', '03', '03_cgcnn' or 'cgcnn' -> '03'."""
    s = str(s).strip()
    nbs = stage_notebooks()
    for sid, nb in nbs.items():
        if s in (sid, sid.lstrip("0"), nb, nb.split("_", 1)[1]):
            return sid
    for m in models.MODEL_TABLE.values():  # a model's name: its stage ("soap_svr" -> "05")
        if s == m.name:
            return m.stage
    raise ValueError(f"unknown stage {s!r}; known: {', '.join(f'{k} ({v})' for k, v in nbs.items())}")


def _rel(path: Path, root: Path) -> str:
    path = Path(path) if Path(path).is_absolute() else root / path
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def all_properties() -> tuple[str, ...]:
    """The seven modelled properties, in lib.data's order."""
    return tuple(TARGETS)


def plan(
    profile: str | Profile = "quick",
    *,
    only: Iterable[str] | str | None = None,
    properties: Iterable[str] | None = None,
    seeds: Iterable[int] | None = None,
    notebooks: Mapping[str, str | Path] | None = None,
    root: str | Path | None = None,
) -> list[Run]:
    """Every run of ``profile``, in execution order.

    only : stages to keep ("03", "3", "cgcnn", or "03,04"); default all seven.
    properties : restrict the per-property stages (03, 04, 05, 07); default the seven of lib.data.
    seeds : override the profile's seeds (all stages; 07 otherwise uses the first GNN seed).
    notebooks : stage -> notebook path (relative: to ``root``), to run another notebook in a stage's
        place (tests do this).
    root : the project root the paths are relative to (default lib.paths.ROOT).
    """
    prof = get_profile(profile)
    p = prof.name
    root = Path(root) if root is not None else ROOT
    if isinstance(only, str):
        only = only.split(",")
    nbs = stage_notebooks()
    stages = sorted({_stage_id(s) for s in only if str(s).strip()}) if only else list(nbs)
    known = all_properties()
    if properties is None:
        props = known
    else:
        props = tuple(dict.fromkeys(properties))
        unknown = [x for x in props if x not in known]
        if unknown:
            word = "property" if len(unknown) == 1 else "properties"
            raise ValueError(f"unknown {word} {unknown}; known: {list(known)}")
    seeds = tuple(int(s) for s in seeds) if seeds is not None else None
    nb = {sid: f"notebooks/{stem}.ipynb" for sid, stem in nbs.items()}
    for sid, path in (notebooks or {}).items():
        nb[_stage_id(sid)] = _rel(Path(path), root)

    fetch, graphs = f"01_fetch_{p}", f"02_graphs_{p}"
    runs: list[Run] = []
    if "01" in stages:
        runs.append(Run(fetch, "01", nb["01"], (("profile", p),)))
    if "02" in stages:
        runs.append(Run(graphs, "02", nb["02"], (("profile", p),), needs=(fetch,)))

    # every model of the table side by side: seed by seed, so that an interrupted sweep has every property
    # at n=1 first; a model with notebook parameters (05: model=svr|mlp) names its run after itself
    trained = [m for m in models.MODEL_TABLE.values() if m.stage in stages]
    all_seeds = sorted({s for m in trained for s in (seeds if seeds is not None else m.seeds_of(prof))})
    for seed in all_seeds:
        for prop in props:
            base = (("property", prop), ("seed", seed), ("profile", p))
            for m in trained:
                if seed not in (seeds if seeds is not None else m.seeds_of(prof)):
                    continue
                stem = f"{m.notebook}_{m.name.split('_', 1)[1]}" if m.params else m.notebook
                needs = (graphs,) if m.graph_kind else (fetch,)
                runs.append(Run(f"{stem}_{prop}_{p}_s{seed}", m.stage, nb[m.stage], base + m.params,
                                records.record_relpath(m.run_name(prop, p, seed)), needs=needs, model=m.name))

    if "06" in stages:
        runs.append(Run(f"06_benchmark_{p}", "06", nb["06"], (("profile", p),)))

    if "07" in stages:
        xprops = [x for x in props if p != "smoke" or x in XGNN_ALWAYS]
        for seed in seeds if seeds is not None else prof.seeds_gnn[:1]:
            for prop in xprops:
                for lab in XGNN_LABELLINGS:
                    runs.append(Run(
                        f"07_xgnn_{prop}_{lab}_{p}_s{seed}", "07", nb["07"],
                        (("property", prop), ("labelling", lab), ("seed", seed), ("profile", p)),
                        _rel(explanations_path(prop, lab, p, seed, root / XGNN_DIR), root),
                        needs=(graphs,),
                    ))
    return sorted(runs, key=lambda r: r.phase)  # stable: the order above within a phase


# ----------------------------------------------------------------------------- one run


#: how each run's papermill starts: on Linux it first asks for SIGTERM when the thread that started it
#: dies (prctl PR_SET_PDEATHSIG), so a killed sweep or Dask worker leaves no training behind (the kernel
#: follows papermill: ipykernel exits with its parent); then it is ``python -m papermill``
_LAUNCH = """import ctypes, os, runpy, signal, sys
try:
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)
    if os.getppid() != int(os.environ.get("COMPENDIUM_SWEEP_PARENT", os.getppid())):
        sys.exit(143)  # the parent died before the request
except (AttributeError, OSError, ValueError):
    pass
sys.argv = ["papermill", *sys.argv[1:]]
runpy.run_module("papermill", run_name="__main__", alter_sys=True)
"""
_LIVE: set[subprocess.Popen] = set()  # papermill processes this process started (killed on Ctrl-C)
_LIVE_LOCK = threading.Lock()
#: set (under _LIVE_LOCK) when the sweep is interrupted: a run that starts after that is killed at once
_STOPPING = threading.Event()


def run_env(threads: int, root: str | Path, python: str | None = None) -> dict[str, str]:
    """The environment of a run's papermill process and kernel: threads capped, project root, and the inline
    matplotlib backend, so that the executed notebook shows every figure (the figure files are written
    too)."""
    env = dict(os.environ)
    for var in THREAD_VARS:
        env[var] = str(int(threads))
    env["COMPENDIUM_ROOT"] = str(root)
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # Agg left chapters without figures
    env.setdefault("TQDM_MININTERVAL", "5")  # progress bars in executed notebooks: a line per 5 s, not 10/s
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # quiets a debugpy warning in every kernel
    bindir = str(Path(python or sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")  # the kernel is this environment's python
    return env


def _error_of(output: Path) -> str | None:
    """'ename: evalue' of the first error in an executed notebook, or None."""
    try:
        nb = json.loads(output.read_text())
    except (OSError, ValueError):
        return None
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) or []:
            if out.get("output_type") == "error":
                return f"{out.get('ename', 'Error')}: {out.get('evalue', '')}".strip()[:500]
    return None


def _tail(path: Path, n: int = 3) -> str:
    try:
        lines = [x for x in path.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])[-500:]


def _kill(proc: subprocess.Popen) -> None:
    """Stop a papermill process and its kernel (they share a process group of their own)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def execute_run(
    run: Run,
    root: str | Path | None = None,
    threads: int = 1,
    timeout: float | None = None,
    python: str | None = None,
) -> Result:
    """Execute ``run`` with papermill in a subprocess; never raises (a failure is a Result).

    This is the function a Dask worker runs: ``root`` None means the worker's own checkout
    (lib.paths.ROOT there), ``python`` None the worker's interpreter.
    """
    root = Path(root) if root is not None else ROOT
    python = python or sys.executable
    host = platform.node()
    base = {"name": run.name, "stage": run.stage, "output": run.output, "record": run.record, "host": host,
            "threads": threads}
    nb_in = root / run.notebook
    if not nb_in.exists():
        return Result(**base | {"output": None}, status="missing",
                      message=f"{run.notebook} not found (not landed yet?)")
    out, log = root / run.output, root / run.log
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [python, "-c", _LAUNCH, str(nb_in), str(out), "-y", json.dumps(run.parameters),
           "--cwd", str(nb_in.parent), "--no-progress-bar", "--log-level", "WARNING"]
    t0 = time.perf_counter()
    with open(log, "w") as logf:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        shown = " ".join([python, "-m", "papermill", *cmd[3:]])
        logf.write(f"# {shown}\n# host {host}, {threads} thread(s), {stamp}\n")
        logf.flush()
        try:
            env = run_env(threads, root, python) | {"COMPENDIUM_SWEEP_PARENT": str(os.getpid())}
            proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=logf, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        except OSError as err:
            return Result(**base, status="failed", message=f"could not start papermill: {err}")
        with _LIVE_LOCK:
            _LIVE.add(proc)
            stopping = _STOPPING.is_set()
        if stopping:  # interrupted while this run was starting: the interrupt's kill missed it
            _kill(proc)
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill(proc)
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(proc)
    seconds = time.perf_counter() - t0
    if timed_out:
        return Result(**base, status="failed", seconds=seconds, message=f"timed out after {timeout:g} s")
    if proc.returncode != 0:
        why = _error_of(out) or _tail(log) or f"papermill exited with status {proc.returncode}"
        return Result(**base, status="failed", seconds=seconds, message=why)
    if run.record and not (root / run.record).exists():
        return Result(**base, status="failed", seconds=seconds,
                      message=f"ran without error but wrote no {run.record}")
    return Result(**base, status="ok", seconds=seconds)


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


def _needed(runs: Sequence[Run], root: Path, force: bool) -> dict[str, tuple[bool, str]]:
    """name -> (to run?, why (not)). Runs with a record: unless it exists and is not stale (stale_records).
    01/02: while a reader is to do.

    A reader whose notebook is missing does not count: it will not run, so it needs nothing.
    """
    stale = {} if force else stale_records(runs, root)
    dependents: dict[str, list[str]] = {}
    for r in runs:
        for n in r.needs:
            dependents.setdefault(n, []).append(r.name)
    out: dict[str, tuple[bool, str]] = {}
    active: dict[str, bool] = {}  # will really run
    for r in reversed(runs):  # dependents come later in the plan
        if r.record is not None:
            done = (root / r.record).exists() and not force and r.name not in stale
            out[r.name] = (not done, f"{r.record} exists" if done else stale.get(r.name, ""))
        else:
            deps = [d for d in dependents.get(r.name, []) if d in out]
            if deps and not any(active[d] for d in deps):
                out[r.name] = (False, "every run that reads it is done")
            else:
                out[r.name] = (True, "")
        active[r.name] = out[r.name][0] and (root / r.notebook).exists()
    return out


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
    force : run even when the record exists.  dry_run : report what would run, run nothing.
    timeout : seconds per run before it is killed and counted as failed.
    """
    t_start = time.perf_counter()
    root_path = Path(root) if root is not None else ROOT
    echo = echo or (lambda s: print(s, flush=True))
    own_client = None
    if client is None and scheduler:
        from dask.distributed import Client  # here: dask is needed only for a cluster

        try:
            client = own_client = Client(scheduler, timeout=30)
        except (OSError, TimeoutError) as err:
            raise ConnectionError(
                f"could not reach the Dask scheduler at {scheduler} ({err}); start one with `dask scheduler` "
                f"and workers with `dask worker {scheduler} --nthreads 1 --nworkers N` (README: the sweep on "
                "a Dask cluster)") from None
    cores = default_jobs()
    threads_given = threads is not None
    if client is not None:
        threads = int(threads or 1)
        executor = str(getattr(client, "scheduler", None) and client.scheduler.address or scheduler)
        jobs = None
    else:
        if jobs is None and threads is None:
            jobs, threads = cores, 1
        elif jobs is None:
            jobs = max(1, cores // int(threads))
        elif threads is None:
            threads = max(1, cores // int(jobs))
        jobs, threads = int(jobs), int(threads)
        executor = "local"
    # the worker resolves its own root when none was given (checkouts mounted at different paths)
    run_root = str(root_path) if (root is not None or client is None) else None

    needed = _needed(runs, root_path, force)
    for name, (todo, why) in needed.items():
        if todo and why and not dry_run:  # a stale record (stale_records): say why it is trained again
            echo(f"  {name}: {why}")
    results: dict[str, Result] = {}
    phases = sorted({r.phase for r in runs})
    pool = ThreadPoolExecutor(max_workers=jobs) if (client is None and not dry_run) else None
    token = uuid.uuid4().hex[:8]
    bar = None
    futures: dict = {}
    try:
        todo_total = sum(1 for r in runs if needed[r.name][0])
        bar = tqdm(total=todo_total, desc=f"sweep {profile or ''}".strip(), unit="run",
                   disable=not progress or dry_run or todo_total == 0, dynamic_ncols=True)
        for ph in phases:
            batch = []
            for r in (r for r in runs if r.phase == ph):
                todo, why = needed[r.name]
                out = r.output if (root_path / r.output).exists() else None
                if not todo:
                    results[r.name] = Result(r.name, r.stage, "skipped", message=why, output=out,
                                             record=r.record)
                    continue
                if not (root_path / r.notebook).exists():
                    results[r.name] = Result(r.name, r.stage, "missing",
                                             message=f"{r.notebook} not found (not landed yet?)")
                    bar.update(1)
                    continue
                bad = [n for n in r.needs if n in results and results[n].status in ("failed", "blocked")]
                if bad:
                    results[r.name] = Result(r.name, r.stage, "blocked",
                                             message=f"needs {', '.join(bad)}, which failed", record=r.record)
                    bar.update(1)
                    continue
                if dry_run:
                    results[r.name] = Result(r.name, r.stage, "planned", output=r.output, record=r.record,
                                             message=why)
                    continue
                batch.append(r)
            if not batch:
                continue
            if client is not None:
                futures = {client.submit(execute_run, r, run_root, threads, timeout, key=f"{r.name}-{token}",
                                         pure=False): r for r in batch}
                from dask.distributed import as_completed  # here: dask is needed only for a cluster

                for fut in as_completed(futures):
                    r = futures[fut]
                    try:
                        res = fut.result()
                    except Exception as err:  # noqa: BLE001 - a lost worker is a failed run, not a crash
                        res = Result(r.name, r.stage, "failed", message=f"Dask task failed: {err!r}"[:500],
                                     output=r.output, record=r.record)
                    results[r.name] = res
                    _report(res, bar, echo)
            else:
                # a phase with fewer runs than jobs (01, 02, 06) gives each run more threads, unless told
                t_run = threads if threads_given else max(threads, cores // min(jobs, len(batch)))
                futs = {pool.submit(execute_run, r, run_root, t_run, timeout): r for r in batch}
                pending = set(futs)
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        res = fut.result()
                        results[futs[fut].name] = res
                        _report(res, bar, echo)
    except KeyboardInterrupt:
        with _LIVE_LOCK:
            _STOPPING.set()
            live = list(_LIVE)
        for proc in live:
            _kill(proc)
        if client is not None and futures:
            client.cancel(list(futures))  # the queued ones; a run already started on a worker goes on
            echo("interrupted: queued Dask tasks cancelled; runs already started on workers go on to the end")
        raise
    finally:
        if bar is not None:
            bar.close()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if own_client is not None:
            own_client.close()
    ordered = [results[r.name] for r in runs if r.name in results]
    summary = Summary(ordered, time.perf_counter() - t_start, executor, jobs, threads, profile)
    if not dry_run and profile:
        d = summary.as_dict()
        records.write_json(root_path / NOTEBOOK_OUT / f"sweep_{profile}.json", d)
        with open(root_path / NOTEBOOK_OUT / "sweeps.jsonl", "a") as f:  # one line per sweep, for timings
            f.write(json.dumps({k: v for k, v in d.items() if k != "results"}) + "\n")
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


# ----------------------------------------------------------------------------- CLI


def _split(values: Sequence[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v for x in values for v in x.replace(",", " ").split()]


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI: `python -m lib.sweep --profile quick [--only 03,04] [--properties ...] [--jobs N] ...`."""
    ap = argparse.ArgumentParser(prog="python -m lib.sweep", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick", choices=list(PROFILES), help="run scale (lib/profiles.py)")
    ap.add_argument("--only", nargs="+", metavar="STAGE", help="stages to run: 03,04 (or cgcnn megnet...)")
    ap.add_argument("--properties", nargs="+", metavar="P", help="properties of 03/04/05/07 (default: all 7)")
    ap.add_argument("--seeds", nargs="+", metavar="S", help="override the profile's seeds")
    ap.add_argument("--jobs", "-j", type=int, help="parallel runs on this machine (default: the cores)")
    ap.add_argument("--threads", type=int, help="threads per run (default: cores // jobs; 1 on Dask)")
    ap.add_argument("--dask-scheduler", metavar="ADDRESS",
                    help="run every run as a task on this Dask scheduler (tcp://host:8786)")
    ap.add_argument("--root", help="project root on the workers, if not where each worker's lib is installed")
    ap.add_argument("--timeout", type=float, help="seconds per run before it is killed (default: none)")
    ap.add_argument("--force", action="store_true", help="run even when the record exists")
    ap.add_argument("--dry-run", "-n", action="store_true", help="list what would run, run nothing")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar, one line per run")
    a = ap.parse_args(argv)

    def _terminate(signum, frame):  # `kill` (or a batch system's time limit) stops the runs, as Ctrl-C does
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        runs = plan(a.profile, only=_split(a.only), properties=_split(a.properties),
                    seeds=[int(s) for s in _split(a.seeds)] if a.seeds else None)
    except ValueError as err:
        ap.error(str(err))
    if a.dry_run:
        print(f"{len(runs)} runs in the {a.profile} profile:")
    try:
        summary = sweep(runs, jobs=a.jobs, threads=a.threads, scheduler=a.dask_scheduler, root=a.root,
                        force=a.force, dry_run=a.dry_run, timeout=a.timeout, profile=a.profile,
                        progress=not a.no_progress)
    except ConnectionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: the runs in progress were stopped; finished runs keep their records, and the "
              "same command resumes from there", file=sys.stderr)
        return 130
    if a.dry_run:
        for r in summary.results:
            print(f"  {r.status:8s} {r.name}" + (f"  ({r.message})" if r.message else ""))
    print(summary.format())
    return summary.exit_code


if __name__ == "__main__":
    # run the imported module's main, so that what goes to Dask workers (execute_run, Run) is pickled
    # by reference to lib.sweep, not by value from __main__
    from lib.sweep import main as _main

    raise SystemExit(_main())
