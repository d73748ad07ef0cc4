"""Run records (one JSON per trained model) and checkpoints (one .pt beside it): write, read, list.

A run record is the unit that tables and figures are made from (06_benchmark reads nothing else), so a
run trained elsewhere (a GPU box, a cluster) drops into ``results/runs/`` and counts. Its name is
``<model>_<property>_<profile>_s<seed>``; the checkpoint ``<name>.pt`` holds the best epoch's weights
and all it takes to use them: the model's class and constructor arguments, the target normaliser, the
graph parameters, the target's name and unit. ``<name>.state.pt`` is the resumable training state.

Files are written atomically (temporary file + ``os.replace``), so an interrupted run never leaves a
half-written record or checkpoint behind.

``results/`` is not tracked by git, so the records of the long profiles (the thesis protocol: days of CPU)
are also kept in ``records/``, which is: :func:`archive` copies a profile's finished records there (to be
committed), :func:`restore` copies them back into ``results/runs/`` where they are missing, and the sweep
restores before it plans, so a run finished on another machine or in an earlier working session is not
trained again and counts in 06_benchmark's tables. Only the JSON records travel, as compact gzipped JSON
(``<name>.json.gz``, a third of the size: a record keeps its per-crystal predictions); checkpoints stay where
they were made. ``python -m lib.records archive --profile thesis`` / ``restore``.

A working session's checkout may be new (nothing untracked survives it), so long trainings that span sessions
(the ``long`` profile's members, ~80-140 min of a core each) are *parked* as well: :func:`park` copies a
profile's unfinished training states and its finished runs' checkpoints into ``records/parked/`` (commit them;
a state is ~1.8 MB, a CGCNN checkpoint ~0.4 MB, and a run's parked state gives way to its checkpoint once it
finishes), and :func:`restore` puts them back beside the records. A restored unfinished run resumes from its
last epoch; a restored finished one (record and checkpoint, no state) is not trained again (``lib.train.fit``)
and can be shipped. ``python -m lib.records park --profile long``.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lib.data.targets import target_info
from lib.devices import pick_device
from lib.metrics import score
from lib.models.registry import build_model, model_spec
from lib.normalizer import Normalizer
from lib.paths import ARCHIVE, ROOT, RUNS, RUNS_DIR, atomic_path
from lib.profiles import PIPELINE_TESTS

CHECKPOINT_FORMAT = "compendium-checkpoint/1"


# ----------------------------------------------------------------------------- atomic files


def _atomic(path: Path, write) -> Path:
    """Call ``write(binary file)`` on a temporary file that then replaces ``path`` (atomic_path)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)
    return Path(path)


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    data = json.dumps(obj, indent=1, allow_nan=True).encode()
    return _atomic(Path(path), lambda f: f.write(data))


def torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` atomically."""
    return _atomic(Path(path), lambda f: torch.save(obj, f))


def torch_load(path: str | Path, map_location=None) -> Any:
    """``torch.load`` of our own files (plain containers of tensors) with ``map_location`` (CPU <-> CUDA)."""
    return torch.load(Path(path), map_location=map_location, weights_only=True)


# ----------------------------------------------------------------------------- environment


def git_commit(root: str | Path = ROOT) -> str | None:
    """The HEAD commit of the project's git repository (None outside one), '+dirty' when modified."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=5)
        if head.returncode != 0 or not head.stdout.strip():
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True,
            text=True, timeout=10,
        )
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


# ----------------------------------------------------------------------------- run records


def record_path(name: str, runs_dir: str | Path | None = None) -> Path:
    """The JSON path of run ``name``."""
    return Path(runs_dir or RUNS) / f"{name}.json"


def record_relpath(name: str) -> str:
    """The JSON path of run ``name`` relative to the project root (how the sweep names it on any machine)."""
    return f"{RUNS_DIR}/{name}.json"


def jsonable(value: Any) -> Any:
    """Hyperparameters for a JSON run record: arrays/tensors become a short description, not data."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, torch.Tensor | np.ndarray):
        return {"array_shape": list(value.shape), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "as_dict"):
        return jsonable(value.as_dict())
    return repr(value)


def profile_name(profile: Any) -> str:
    """A profile's name, given the name or a ``lib.profiles.Profile``."""
    return str(getattr(profile, "name", profile))


def new_record(
    *,
    run: str,
    model: str,
    model_class: str,
    property: str,
    seed: int,
    profile: Any,
    split: dict[str, np.ndarray],
    y: np.ndarray,
    predictions: dict[str, np.ndarray],
    hparams: dict,
    train_time_s: float,
    device: dict,
    n_parameters: int,
    parameter_bytes: int,
    normalizer: Normalizer | None,
    content_hash: str | None,
    checkpoint: str | None,
    ids: Any = None,
    task: str = "regression",
    unit: str | None = None,
    extra: dict | None = None,
    **fields: Any,
) -> dict:
    """The run record every fitter writes (``lib.train.fit``: CGCNN, MEGNet, the SOAP MLP, XGNN classifiers;
    ``lib.svr.fit_svr``): what ran, on what, how well, how long; ``fields`` are the fitter's own (epochs,
    curves, support vectors...), ``extra`` the caller's. The unit and label come from ``lib.data.targets``
    unless ``unit`` is given.

    ``predictions`` maps a split ("train", "val", "test": whichever were predicted, in the order to report)
    to the model's outputs on it, in the target's units (class scores for a classifier): they give
    ``metrics`` ({split: lib.metrics.score}), whose test metrics are also top-level ``test_mae``,
    ``test_rmse``, ``test_r2`` (or ``test_accuracy``). The test predictions are kept with their ids
    (``ids[i]`` of the items, or their positions without ``ids``), and the validation ones (in split order)
    when there are any.
    """
    default_unit, label = target_info(property)
    y = np.asarray(y)
    idx = {k: np.asarray(v, dtype=np.int64) for k, v in split.items()}
    metrics = {k: score(task, y[idx[k]], p) for k, p in predictions.items()}
    test = idx["test"]
    test_ids = [str(ids[i]) for i in test] if ids is not None else [int(i) for i in test]
    val = predictions.get("val")
    return {
        "run": run, "model": model, "model_class": model_class, "property": property,
        "unit": unit if unit is not None else default_unit, "label": label, "task": task, "seed": seed,
        "profile": getattr(profile, "name", profile),
        "profile_settings": profile.as_dict() if hasattr(profile, "as_dict") else None,
        "split_sizes": {k: int(len(v)) for k, v in idx.items()},
        "hparams": hparams,
        "metrics": metrics,
        **{f"test_{k}": v for k, v in metrics["test"].items() if k != "n"},
        "train_time_s": train_time_s,
        **fields,
        "device": device,
        "n_parameters": n_parameters, "parameter_bytes": parameter_bytes,
        "normalizer": normalizer.as_dict() if normalizer else None,
        "content_hash": content_hash, "git_commit": git_commit(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "checkpoint": checkpoint,
        "test_predictions": {"id": test_ids, "y_true": y[test].tolist(),
                             "y_pred": np.asarray(predictions["test"]).tolist()},
        **({"val_predictions": {"y_true": y[idx["val"]].tolist(), "y_pred": np.asarray(val).tolist()}}
           if val is not None else {}),
        **(extra or {}),
    }


def checkpoint_path(name: str, runs_dir: str | Path | None = None) -> Path:
    """The checkpoint path of run ``name``."""
    return Path(runs_dir or RUNS) / f"{name}.pt"


def state_path(name: str, runs_dir: str | Path | None = None) -> Path:
    """The resumable training state of run ``name``."""
    return Path(runs_dir or RUNS) / f"{name}.state.pt"


def write_record(record: dict, runs_dir: str | Path | None = None) -> Path:
    """Write a run record as ``<runs_dir>/<record['run']>.json``."""
    return write_json(record_path(record["run"], runs_dir), record)


def read_record(name_or_path: str | Path, runs_dir: str | Path | None = None) -> dict:
    """A run record, by run name or by path (``.json``, or the archive's gzipped ``.json.gz``)."""
    p = Path(name_or_path)
    if p.name.endswith(ARCHIVE_SUFFIX):
        with gzip.open(p, "rt") as f:
            return json.load(f)
    if p.suffix != ".json":
        p = record_path(str(name_or_path), runs_dir)
    with open(p) as f:
        return json.load(f)


def list_records(runs_dir: str | Path | None = None, **where: Any) -> list[dict]:
    """Every run record under ``runs_dir``, optionally filtered (``model="cgcnn", property=...``)."""
    out = []
    for p in sorted(Path(runs_dir or RUNS).glob("*.json")):
        try:
            rec = read_record(p)
        except (OSError, json.JSONDecodeError):
            continue
        if all(rec.get(k) == v for k, v in where.items()):
            out.append(rec)
    return out


def records_frame(runs_dir: str | Path | None = None, **where: Any):
    """One row per run: model, property, profile, seed, split sizes, test metrics, time, parameters."""

    rows = []
    for r in list_records(runs_dir, **where):
        rows.append({
            "run": r["run"], "model": r.get("model"), "property": r.get("property"), "unit": r.get("unit"),
            "profile": r.get("profile"), "seed": r.get("seed"),
            **{f"n_{k}": v for k, v in (r.get("split_sizes") or {}).items()},
            **{f"test_{k}": v for k, v in (r.get("metrics", {}).get("test") or {}).items() if k != "n"},
            "best_epoch": r.get("best_epoch"), "epochs_run": r.get("epochs_run"),
            "train_time_s": r.get("train_time_s"), "n_parameters": r.get("n_parameters"),
            "device": (r.get("device") or {}).get("name"),
        })
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- the committed archive

ARCHIVE_SUFFIX = ".json.gz"


def archive_path(name: str, archive_dir: str | Path | None = None) -> Path:
    """Where run ``name`` is archived: ``<archive_dir>/<name>.json.gz``."""
    return Path(archive_dir or ARCHIVE) / f"{name}{ARCHIVE_SUFFIX}"


def archived(archive_dir: str | Path | None = None) -> dict[str, Path]:
    """run name -> its archived file (``.json.gz``; a plain ``.json`` of an older archive also counts)."""
    src = Path(archive_dir or ARCHIVE)
    if not src.is_dir():
        return {}
    out = {p.name[: -len(".json")]: p for p in sorted(src.glob("*.json"))}
    out.update({p.name[: -len(ARCHIVE_SUFFIX)]: p for p in sorted(src.glob(f"*{ARCHIVE_SUFFIX}"))})
    return out


def _archive_bytes(rec: dict) -> bytes:
    """A record as the archive stores it: compact JSON, gzipped without a time stamp (same record, same
    bytes)."""
    return gzip.compress(json.dumps(rec, separators=(",", ":"), allow_nan=True).encode(), compresslevel=9,
                         mtime=0)


def archive(profile: str, runs_dir: str | Path | None = None, archive_dir: str | Path | None = None
            ) -> list[Path]:
    """Copy the finished run records of ``profile`` (those with a test MAE) from ``runs_dir`` into the
    archive (default ``records/``) as ``<run>.json.gz``, replacing older copies (and a plain ``.json`` of
    the same run); returns the files written."""
    if profile in PIPELINE_TESTS:  # their records are not results
        raise ValueError(f"the {profile} profile tests the pipeline; its records are not results to archive")
    dest = Path(archive_dir or ARCHIVE)
    out = []
    for rec in list_records(runs_dir, profile=profile):
        if rec.get("test_mae") is None or not rec.get("run"):
            continue  # unfinished or not a trained model
        target, data = archive_path(rec["run"], dest), _archive_bytes(rec)
        legacy = record_path(rec["run"], dest)
        if legacy.exists():
            legacy.unlink()
        if target.exists() and target.read_bytes() == data:
            continue
        dest.mkdir(parents=True, exist_ok=True)
        out.append(_atomic(target, lambda f, data=data: f.write(data)))
    return out


PARKED = "parked"
_STATE_SUFFIX, _CHECKPOINT_SUFFIX = ".state.pt", ".pt"


def _of_profile(name: str, profile: str) -> bool:
    """Whether run ``name`` (``<model>_<property>_<profile>_s<seed>[_e<member>]``) is of ``profile``."""
    return re.search(rf"_{re.escape(profile)}_s\d+(_e\d+)?$", name) is not None


def parked(archive_dir: str | Path | None = None) -> dict[str, Path]:
    """run name -> its parked file in ``<archive>/parked/`` (``<run>.state.pt`` or ``<run>.pt``)."""
    src = Path(archive_dir or ARCHIVE) / PARKED
    out = {}
    for p in sorted(src.glob(f"*{_CHECKPOINT_SUFFIX}")) if src.is_dir() else ():
        suffix = _STATE_SUFFIX if p.name.endswith(_STATE_SUFFIX) else _CHECKPOINT_SUFFIX
        out[p.name[: -len(suffix)]] = p
    return out


def park(profile: str, runs_dir: str | Path | None = None, archive_dir: str | Path | None = None
         ) -> list[Path]:
    """Keep ``profile``'s trainings across working sessions: copy into ``<archive>/parked/`` the checkpoint of
    every finished run (one with a record that has a test MAE; its parked state, if any, is removed) and the
    resumable state of every unfinished one (replacing an older parked state). Returns the files written."""
    if profile in PIPELINE_TESTS:
        raise ValueError(f"the {profile} profile tests the pipeline; its runs are not parked")
    src, dest = Path(runs_dir or RUNS), Path(archive_dir or ARCHIVE) / PARKED
    names = {p.name[: -len(_STATE_SUFFIX)] for p in src.glob(f"*{_STATE_SUFFIX}")}
    names |= {p.stem for p in src.glob("*.json")}
    out = []
    for name in sorted(n for n in names if _of_profile(n, profile)):
        rec, ck, st = record_path(name, src), checkpoint_path(name, src), state_path(name, src)
        done = rec.exists() and ck.exists() and read_record(rec).get("test_mae") is not None
        keep, drop = (ck, dest / f"{name}{_STATE_SUFFIX}") if done else (st, None)
        if not keep.exists():
            continue
        target = dest / keep.name
        if drop is not None and drop.exists():
            drop.unlink()
        data = keep.read_bytes()
        if target.exists() and target.read_bytes() == data:
            continue
        dest.mkdir(parents=True, exist_ok=True)
        out.append(_atomic(target, lambda f, data=data: f.write(data)))
    return out


def _unpark(profile: str | None, runs_dir: str | Path | None, archive_dir: str | Path | None,
            wanted: set | None) -> list[Path]:
    """The parked states and checkpoints (of ``profile``) back into ``runs_dir`` where that run has neither
    a state nor a checkpoint there; never over a newer training's files."""
    out = []
    for name, p in parked(archive_dir).items():
        if wanted is not None and name not in wanted:
            continue
        if profile is not None and not _of_profile(name, profile):
            continue
        if state_path(name, runs_dir).exists() or checkpoint_path(name, runs_dir).exists():
            continue
        target = Path(runs_dir or RUNS) / p.name
        target.parent.mkdir(parents=True, exist_ok=True)
        data = p.read_bytes()
        out.append(_atomic(target, lambda f, data=data: f.write(data)))
    return out


def restore(profile: str | None = None, runs_dir: str | Path | None = None,
            archive_dir: str | Path | None = None, names: Any = None) -> list[Path]:
    """Copy archived records (of ``profile``, or only the run ``names`` given) into ``runs_dir`` where that
    run has no record yet, and the parked states and checkpoints (:func:`park`) where it has neither; a file
    already there is never replaced. Returns the files written."""
    wanted = set(names) if names is not None else None
    out = _unpark(profile, runs_dir, archive_dir, wanted)
    for name, p in archived(archive_dir).items():
        if wanted is not None and name not in wanted:
            continue
        target = record_path(name, runs_dir)
        if target.exists():
            continue
        try:
            rec = read_record(p)
        except (OSError, EOFError, json.JSONDecodeError):
            continue
        if rec.get("run") != name or (profile is not None and rec.get("profile") != profile):
            continue
        out.append(write_record(rec, runs_dir))
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m lib.records archive|restore --profile thesis``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m lib.records", description="the committed archive of run "
                                 "records (records/): archive a profile's finished records, park its "
                                 "trainings (states, checkpoints) across working sessions, or restore both")
    ap.add_argument("action", choices=("archive", "restore", "park"))
    ap.add_argument("--profile", default="thesis")
    a = ap.parse_args(argv)
    if a.action == "park":
        written = park(a.profile)
        mb = sum(p.stat().st_size for p in written) / 1e6
        print(f"{len(written)} state(s)/checkpoint(s) of the {a.profile} profile parked in "
              f"{ARCHIVE.name}/{PARKED}/ ({mb:.1f} MB; {len(parked())} parked in all); commit them")
    elif a.action == "archive":
        written = archive(a.profile)
        print(f"{len(written)} record(s) of the {a.profile} profile written to {ARCHIVE.name}/ "
              f"({len(archived())} in all); commit them")
    else:
        written = restore(a.profile)
        print(f"{len(written)} record(s), state(s) and checkpoint(s) of the {a.profile} profile restored "
              f"into {RUNS_DIR}/")
    return 0


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | Path, model: torch.nn.Module, **meta: Any) -> Path:
    """Save weights + model spec (class, kwargs) + ``meta`` (normalizer, graph_params, target, unit...)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    ckpt = {"format": CHECKPOINT_FORMAT, "model": model_spec(model), "state_dict": state, **meta}
    return torch_save(ckpt, path)


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (eval mode, on ``device``) and what it predicts."""

    model: torch.nn.Module
    target: str
    unit: str | None
    task: str = "regression"
    normalizer: Normalizer | None = None  # None for classifiers
    graph_params: dict | None = None
    label: str | None = None
    record: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def device(self) -> torch.device:
        return next(iter(self.model.state_dict().values())).device

    @property
    def column(self) -> str:
        """Column name of a prediction, with its unit: e.g. 'formation_energy_per_atom [eV/atom]'."""
        return f"{self.target} [{self.unit}]" if self.unit else self.target


def load_checkpoint(path: str | Path, device: str | torch.device | None = None) -> Checkpoint:
    """Rebuild the model of a checkpoint on ``device`` (default: cuda if available, else cpu).

    Tensors are mapped to ``device`` on load, so a checkpoint written on CUDA loads on a CPU-only
    machine and the other way round.
    """
    device = pick_device(device)
    ckpt = torch_load(path, map_location=device)
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a compendium checkpoint (format {ckpt.get('format')!r})")
    spec = ckpt["model"]
    kwargs = {k: (v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in spec["kwargs"].items()}
    model = build_model({"class": spec["class"], "kwargs": kwargs})
    model.load_state_dict(ckpt["state_dict"])
    model.to(device).eval()
    norm = ckpt.get("normalizer")
    return Checkpoint(
        model=model, target=ckpt.get("target", "target"), unit=ckpt.get("unit"),
        task=ckpt.get("task", "regression"), normalizer=Normalizer.from_dict(norm) if norm else None,
        graph_params=ckpt.get("graph_params"), label=ckpt.get("label"), record=ckpt.get("record") or {},
        path=Path(path),
    )


if __name__ == "__main__":
    raise SystemExit(main())
