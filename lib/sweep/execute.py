"""One run: papermill executing a notebook in a subprocess, with its thread budget, killed with its parent."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from lib.paths import ROOT
from lib.sweep.plan import Run

#: thread-count variables set in each run's kernel environment
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMBA_NUM_THREADS", "LOKY_MAX_CPU_COUNT", "COMPENDIUM_THREADS")

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
