"""Where the project keeps what it generates: data/, figures/, results/ under the project root."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(os.environ.get("COMPENDIUM_ROOT", Path(__file__).resolve().parent.parent))
DATA = ROOT / "data"
FIGURES = ROOT / "figures"
#: results, relative to the root (the sweep names files relative to any checkout)
RESULTS_DIR = "results"
RESULTS = ROOT / RESULTS_DIR
#: run records and checkpoints, relative to the root
RUNS_DIR = f"{RESULTS_DIR}/runs"
RUNS = ROOT / RUNS_DIR
#: committed run records of the long profiles (lib.records.archive): tracked by git, unlike results/
ARCHIVE_DIR = "records"
ARCHIVE = ROOT / ARCHIVE_DIR
#: XGNN explanations (07_xgnn), relative to the root
XGNN_DIR = f"{RESULTS_DIR}/xgnn"


def default_mirror() -> Path | None:
    """The local data mirror, if one is set (``COMPENDIUM_MIRROR``) or sits at ``../shared/data``."""
    env = os.environ.get("COMPENDIUM_MIRROR")
    if env:
        return Path(env)
    for cand in (ROOT.parent / "shared" / "data", ROOT / "shared" / "data"):
        if (cand / "mp_cgcnn_2020.jsonl.xz").exists():
            return cand
    return None


def _umask() -> int:
    """The process's umask, read without changing it (os.umask would, briefly, for every thread)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; on success it replaces ``path`` in one step.

    An interrupted or failed write leaves ``path`` as it was (never half-written) and removes the
    temporary file, so nothing already fetched, built or trained is lost or corrupted. The temporary
    name keeps ``path``'s suffix (writers such as numpy's ``savez`` append one otherwise).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    tmp.chmod(0o666 & ~_umask())  # mkstemp makes 0600; results are shared (other users, Dask workers)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def figure_file(stem: str, profile, seed: int | None = None, ext: str = "png") -> str:
    """A figure's file name, ``<stem>_<profile>[_s<seed>].<ext>``: 'parity_cgcnn_band_gap_quick_s0.png'
    (``profile`` a name or a ``lib.profiles.Profile``).

    Every notebook names its figures with this (as ``lib.plots.figure_file``), so two profiles (or seeds)
    never write the same file.
    """
    name = str(getattr(profile, "name", profile))
    if not name or any(c in name for c in "/\\ "):
        raise ValueError(f"not a profile name for a file: {name!r}")
    seed_part = f"_s{int(seed)}" if seed is not None else ""
    return f"{stem}_{name}{seed_part}.{ext}"
