"""Predict a property for new structures: with a shipped model, a trained checkpoint, or a seed ensemble.

    python -m lib.predict --model formation_energy my.cif more/*.cif          # a shipped model (pretrained/)
    python -m lib.predict -c results/runs/cgcnn_band_gap_quick_s0.pt my.cif    # a checkpoint of yours
    python -m lib.predict -c s0.pt -c s1.pt -c s2.pt folder/ snapshot.jsonl.xz # an ensemble: mean and σ
    python -m lib.predict --list                                                # what is there to use

In Python: ``predict_structures(structures, model="band_gap")`` (pymatgen Structures or Crystals) or
``predict(checkpoints, inputs)``.

One row per structure: ``id`` (the material id of a folder or snapshot, else the CIF file's name without
``.cif``), ``source`` (the file it came from), the prediction in a column named with the property and its unit
(e.g. ``band_gap [eV]``), with several checkpoints also its standard deviation over them (``band_gap σ [eV]``,
the ensemble's uncertainty; one checkpoint gives no σ column), and ``error``: empty, or why that structure
could not be read or predicted (an unparseable CIF, a broken snapshot line, a missing file, an atom without
neighbours). The rest always goes on. The command exits 1 when nothing at all could be predicted.

A checkpoint names its model class (``lib.models.registry``), the graph parameters and the target
normaliser, so the same code serves every graph model; checkpoints load as data only
(``torch.load(weights_only=True)``) and a checkpoint written on CUDA runs on a CPU-only machine and the other
way round. A checkpoint trained in the smoke profile, or on fewer than :data:`MIN_TRAIN` crystals, predicts
with a warning: its numbers are not meaningful.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lib import pretrained
from lib.data.sources.base import DataUnavailable
from lib.data.sources.files import (
    ID_PROP,
    cif_file,
    id_problem,
    is_snapshot,
    iter_jsonl,
    read_cif_text,
    read_id_prop,
)
from lib.graphs import GraphParams, as_crystal, build_graph, collate
from lib.paths import RUNS
from lib.records import Checkpoint, load_checkpoint
from lib.structures import Crystal, StructureError, crystal_from_arrays, parse_cif
from lib.validate import check_arrays

#: checkpoints trained on fewer crystals than this (or in the smoke profile) predict with a warning
MIN_TRAIN = 1000

Item = tuple[str, str, "Crystal | None", str]  # (id, source, crystal or None, error)


class CheckpointError(ValueError):
    """A file given as a checkpoint that is not one (a record, a training state, an SVR, something else)."""


def _reason(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    reason = getattr(exc, "reason", None)
    text = msg[-1] if msg else type(exc).__name__
    return f"{reason}: {text}" if reason and reason not in text else text


# ----------------------------------------------------------------------------- inputs


def read_cif(path: str | Path, id: str | None = None) -> Item:
    """One CIF file as an item ``(id, source, crystal, error)``; the id is the file name without .cif."""
    path = Path(path)
    ident = id if id is not None else (path.name[:-4] if path.name.lower().endswith(".cif") else path.name)
    try:
        text = read_cif_text(path)
    except OSError as exc:
        return ident, str(path), None, f"cannot read file: {exc.strerror or exc}"
    try:
        return ident, str(path), parse_cif(text), ""
    except Exception as exc:  # noqa: BLE001 - any parser failure is reported for this file only
        read = getattr(exc, "reason", "unparseable CIF") in ("unparseable CIF", "no structure")
        return ident, str(path), None, f"{'unreadable CIF' if read else 'invalid structure'}: {_reason(exc)}"


def read_folder(folder: str | Path) -> list[Item]:
    """A CGCNN-format folder (``id_prop.csv`` + ``<id>.cif``, read as training reads it:
    ``lib.data.sources.files``), or else every ``*.cif`` in it. An item per non-blank line of id_prop.csv
    (its value is not used)."""
    folder = Path(folder)
    listing = folder / ID_PROP
    if listing.exists():
        items = []
        for line in read_id_prop(folder):
            problem = id_problem(line.id)
            cif = cif_file(folder, line.id)
            if problem is None:
                try:  # an id may still be no usable file name here (too long in bytes): an error row
                    problem = None if cif.is_file() else f"no file {cif.name}"
                except (OSError, ValueError) as exc:
                    problem = f"no file {cif.name} ({type(exc).__name__})"
            items.append((line.id, str(listing), None, f"{line.where}: {problem}") if problem else
                         read_cif(cif, id=line.id))
        return items
    cifs = sorted(folder.glob("*.cif"))
    if not cifs:
        return [(folder.name, str(folder), None, "folder has neither id_prop.csv nor *.cif files")]
    return [read_cif(p) for p in cifs]


def _snapshot_crystal(rec: dict) -> Crystal:
    if rec.get("crystal") is not None:
        c = rec["crystal"]
        return crystal_from_arrays(c["lattice"], c["frac_coords"], c["numbers"])
    if rec.get("cif"):
        return parse_cif(rec["cif"])
    raise ValueError("no 'crystal' or 'cif' field")


def read_snapshot(path: str | Path) -> list[Item]:
    """A JSON Lines snapshot (``.jsonl``, ``.xz``, ``.gz``; ``lib.data.sources.files``): a material a line.

    Each line has ``material_id`` and the structure as ``crystal`` (exact arrays: lattice, frac_coords,
    numbers) or ``cif``; a line that is not a JSON object or has no readable structure becomes an error row,
    and a file cut short one more after the rows read.
    """
    path = Path(path)
    items: list[Item] = []
    try:
        for k, rec, why in iter_jsonl(path):
            ident = str(rec.get("material_id", f"{path.name}:{k}")) if rec is not None else f"{path.name}:{k}"
            try:
                if why is not None:
                    raise ValueError(why)
                items.append((ident, str(path), _snapshot_crystal(rec), ""))
            except Exception as exc:  # noqa: BLE001 - one bad line never stops the file
                items.append((ident, str(path), None, f"line {k}: {_reason(exc)}"))
    except (OSError, DataUnavailable) as exc:
        items.append((path.name, str(path), None, f"cannot read snapshot: {exc}"))
    return items


def read_inputs(inputs: Iterable[str | Path]) -> list[Item]:
    """CIF files, CGCNN-format folders and JSON Lines snapshots, in the order given."""
    items: list[Item] = []
    for inp in inputs:
        p = Path(inp)
        if p.is_dir():
            items += read_folder(p)
        elif not p.exists():
            items.append((p.name[:-4] if p.name.lower().endswith(".cif") else p.name, str(p), None,
                          "no such file or folder"))
        elif p.name.lower().endswith(".cif"):
            items.append(read_cif(p))
        elif is_snapshot(p):
            items += read_snapshot(p)
        else:
            items.append((p.name, str(p), None, "unsupported input: give .cif files, a folder, or a "
                          ".jsonl/.jsonl.xz snapshot"))
    return items


# ----------------------------------------------------------------------------- checkpoints and ensembles


def open_checkpoint(path: str | Path, device: str | torch.device | None = None) -> Checkpoint:
    """``load_checkpoint`` with a clear error for the files people give by mistake."""
    p = Path(path)
    name = p.name
    stem = name.split(".")[0]
    if name.endswith(".state.pt"):
        raise CheckpointError(f"{p} is the resumable training state of run {stem}; predict with its "
                              f"checkpoint {p.with_name(stem + '.pt')}")
    if name.endswith(".json"):
        raise CheckpointError(f"{p} is a run record (JSON); predict with the checkpoint beside it, "
                              f"{p.with_name(stem + '.pt')}")
    if name.endswith(".svr.pkl"):
        raise CheckpointError(f"{p} is a SOAP-SVR, which predicts from SOAP descriptors (lib.soap, lib.svr); "
                              "lib.predict serves the graph models (CGCNN, MEGNet): their .pt checkpoints")
    if not p.exists():
        raise CheckpointError(f"no checkpoint {p}")
    try:
        ckpt = load_checkpoint(p, device)
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - not a torch file, or one that is not plain data
        raise CheckpointError(f"{p} is not a checkpoint of this project ({type(exc).__name__}); give a .pt "
                              "file written by lib.train.fit (results/runs/*.pt) or a shipped model (--model)"
                              ) from None
    if not ckpt.graph_params:
        raise CheckpointError(f"{p} has no graph parameters: not a graph model's checkpoint")
    return ckpt


@dataclass
class Predictor:
    """One checkpoint or several (an ensemble: seeds of one recipe) predicting one property."""

    checkpoints: list[Checkpoint]
    name: str = ""
    sigma_scale: float = 1.0  # σ = scale x the members' standard deviation (a shipped ensemble's card has it)

    def __post_init__(self) -> None:
        if not self.checkpoints:
            raise CheckpointError("no checkpoint given")
        targets = {(c.target, c.unit, c.task) for c in self.checkpoints}
        if len(targets) > 1:
            raise CheckpointError(f"an ensemble predicts one property; these checkpoints predict "
                                  f"{sorted(targets)}")

    @property
    def first(self) -> Checkpoint:
        return self.checkpoints[0]

    @property
    def column(self) -> str:
        c = self.first
        return f"{c.target} [class]" if c.task == "classification" else c.column

    @property
    def sigma_column(self) -> str | None:
        """The σ column, only for an ensemble of regressors."""
        if len(self.checkpoints) < 2 or self.first.task == "classification":
            return None
        c = self.first
        return f"{c.target} σ [{c.unit}]" if c.unit else f"{c.target} σ"

    def warnings(self) -> list[str]:
        """Why these predictions may not be meaningful (smoke profile, few training crystals)."""
        out = []
        for c in self.checkpoints:
            rec = c.record or {}
            n_train = (rec.get("split_sizes") or {}).get("train")
            if rec.get("profile") == "smoke":
                out.append(f"{c.path.name} was trained in the smoke profile ({n_train} crystals, "
                           f"{rec.get('epochs_run')} epochs): its predictions are not meaningful")
            elif n_train is not None and n_train < MIN_TRAIN:
                out.append(f"{c.path.name} was trained on only {n_train} crystals (< {MIN_TRAIN}): "
                           "expect large errors")
        return out

    def predict_crystals(self, crystals: Sequence[Crystal], batch_size: int = 256
                         ) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
        """(mean, σ or None, errors) for crystals; a structure fails if any member fails on it."""
        values, errors = [], [""] * len(crystals)
        for c in self.checkpoints:
            v, e = predict_crystals(c, crystals, batch_size=batch_size)
            values.append(v)
            errors = [a or b for a, b in zip(errors, e, strict=True)]
        stack = np.vstack(values)
        bad = np.array([bool(e) for e in errors], dtype=bool)
        stack[:, bad] = np.nan
        mean = stack.mean(axis=0)
        std = self.sigma_scale * stack.std(axis=0, ddof=1) if self.sigma_column else None
        return mean, std, errors


def load_predictor(model: str | None = None, checkpoints: Sequence[str | Path | Checkpoint] = (),
                   device: str | torch.device | None = None) -> Predictor:
    """A shipped model by name (``model``, see ``lib.pretrained``) or the given checkpoints."""
    if model is not None and checkpoints:
        raise CheckpointError("give a shipped model (--model) or checkpoints (-c), not both")
    if model is not None:
        try:
            paths = pretrained.checkpoints(model)
        except KeyError as exc:
            raise CheckpointError(str(exc.args[0])) from None
        scale = float(pretrained.card(model).get("sigma_scale") or 1.0)
        return Predictor([open_checkpoint(p, device) for p in paths], name=model, sigma_scale=scale)
    ckpts = [c if isinstance(c, Checkpoint) else open_checkpoint(c, device) for c in checkpoints]
    return Predictor(ckpts, name=", ".join(str(c.path.name) for c in ckpts if c.path))


class _GraphList:
    """A list of graphs with the ``batch(indices)`` interface of ``GraphSet``."""

    def __init__(self, graphs):
        self.graphs = graphs

    def batch(self, indices):
        return collate([self.graphs[i] for i in indices])


def predict_crystals(
    checkpoint: Checkpoint | str | Path,
    crystals: Sequence[Crystal],
    batch_size: int = 256,
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, list[str]]:
    """One checkpoint's predictions for crystals: (n,) in the target's units (NaN where it failed), reasons.

    For a classifier the values are the predicted class. Structures are batched; a batch that fails
    is retried one structure at a time, so one bad structure costs only its own row.
    """
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else open_checkpoint(checkpoint, device)
    params = GraphParams.from_dict(ckpt.graph_params)
    n = len(crystals)
    values = np.full(n, np.nan)
    errors = [""] * n
    graphs: list = [None] * n
    for i, c in enumerate(crystals):
        try:  # the crystals may come from anywhere: the same checks as every parser's
            c = as_crystal(c)
            check_arrays(c.lattice, c.frac_coords, c.numbers)
        except (StructureError, TypeError) as exc:
            errors[i] = f"invalid structure: {_reason(exc)}"
            continue
        try:
            g = build_graph(c, params)
            lonely = np.setdiff1d(np.arange(len(c)), np.asarray(g.edge_dst))
            if len(lonely):
                raise ValueError(f"{len(lonely)} atom(s) with no neighbour within {params.cutoff:g} Å "
                                 "(the model cannot pass them messages)")
            graphs[i] = g
        except Exception as exc:  # noqa: BLE001
            errors[i] = f"graph: {_reason(exc)}"
    ok = np.array([i for i in range(n) if graphs[i] is not None], dtype=np.int64)
    data = _GraphList(graphs)
    model, dev = ckpt.model, ckpt.device

    @torch.inference_mode()
    def run(idx: np.ndarray) -> np.ndarray:
        out = model(data.batch(idx).to(dev)).float().cpu().numpy()
        if ckpt.task == "classification":
            return out.argmax(axis=1).astype(np.float64)
        out = out.astype(np.float64)
        return ckpt.normalizer.denorm(out) if ckpt.normalizer is not None else out

    model.eval()
    for start in range(0, len(ok), batch_size):
        idx = ok[start : start + batch_size]
        try:
            values[idx] = run(idx)
        except Exception:  # noqa: BLE001 - find the structure(s) that break the batch
            for i in idx:
                try:
                    values[i] = run(np.array([i]))[0]
                except Exception as exc:  # noqa: BLE001
                    errors[i] = f"model: {_reason(exc)}"
    return values, errors


def _table(pred: Predictor, items: list[Item], batch_size: int) -> pd.DataFrame:
    for w in pred.warnings():
        warnings.warn(w, stacklevel=3)
    good = [k for k, it in enumerate(items) if it[2] is not None]
    mean, std, errors = pred.predict_crystals([items[k][2] for k in good], batch_size=batch_size)
    values = np.full(len(items), np.nan)
    sigma = np.full(len(items), np.nan)
    err = [it[3] for it in items]
    for j, k in enumerate(good):
        values[k], err[k] = mean[j], errors[j]
        if std is not None:
            sigma[k] = std[j]
    cols = {"id": [it[0] for it in items], "source": [it[1] for it in items], pred.column: values}
    if pred.sigma_column:
        cols[pred.sigma_column] = sigma
    cols["error"] = err
    return pd.DataFrame(cols)


def predict(
    checkpoint: Checkpoint | str | Path | Sequence[str | Path | Checkpoint] | Predictor | None,
    inputs: Iterable[str | Path],
    out: str | Path | None = None,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    *,
    model: str | None = None,
) -> pd.DataFrame:
    """Read ``inputs`` (CIFs, folders, snapshots), predict, and return (and write to ``out``) the table.

    ``checkpoint``: one checkpoint, a list of them (an ensemble), or None with ``model=`` a shipped model.
    """
    if isinstance(checkpoint, Predictor):
        pred = checkpoint
    else:
        given = [] if checkpoint is None else (
            [checkpoint] if isinstance(checkpoint, str | Path | Checkpoint) else list(checkpoint))
        pred = load_predictor(model, given, device)
    df = _table(pred, read_inputs(inputs), batch_size)
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(out, index=False)
    return df


def predict_structures(
    structures: Sequence,
    model: str | None = None,
    checkpoints: Sequence[str | Path] = (),
    ids: Sequence[str] | None = None,
    batch_size: int = 256,
    device: str | torch.device | None = None,
) -> pd.DataFrame:
    """Predictions for pymatgen ``Structure``s (or ``Crystal``s) with a shipped model or checkpoints.

    >>> predict_structures([Structure.from_file("LiCoO2.cif")], model="formation_energy")
    """
    items: list[Item] = []
    for k, s in enumerate(structures):
        if ids is not None:
            ident = str(ids[k])
        else:
            ident = s.composition.reduced_formula if hasattr(s, "composition") else f"structure {k}"
        try:
            items.append((ident, "python", s if isinstance(s, Crystal) else Crystal.from_structure(s), ""))
        except Exception as exc:  # noqa: BLE001 - one bad structure costs its own row
            items.append((ident, "python", None, _reason(exc)))
    return _table(load_predictor(model, checkpoints, device), items, batch_size)


# ----------------------------------------------------------------------------- the command line


def found_checkpoints(runs_dir: str | Path | None = None) -> pd.DataFrame:
    """Shipped models and the checkpoints in results/runs/ with their profile and test MAE (for --list)."""
    rows = [{"use": f"--model {r['name']}", "property": r["property"], "profile/recipe": r["recipe"],
             "members": r["members"], "test MAE": r["test_mae"], "unit": r["unit"], "n_train": r["n_train"]}
            for _, r in pretrained.available().iterrows()]
    runs = Path(runs_dir) if runs_dir is not None else RUNS
    for pt in sorted(runs.glob("*.pt")) if runs.exists() else []:
        if pt.name.endswith(".state.pt"):
            continue
        try:
            rec = json.loads(pt.with_suffix(".json").read_text())
        except (OSError, ValueError):
            continue
        if not rec.get("hparams", {}).get("graph") or rec.get("task") != "regression":
            continue
        rows.append({"use": f"-c {pt}", "property": rec.get("property"), "profile/recipe": rec.get("profile"),
                     "members": 1, "test MAE": rec.get("test_mae"), "unit": rec.get("unit"),
                     "n_train": (rec.get("split_sizes") or {}).get("train")})
    return pd.DataFrame(rows, columns=["use", "property", "profile/recipe", "members", "test MAE", "unit",
                                       "n_train"])


EXAMPLES = """examples:
  python -m lib.predict --model formation_energy LiCoO2.cif LiFePO4.cif
  python -m lib.predict --model band_gap my_folder/ --out band_gaps.csv        (mean and σ of the ensemble)
  python -m lib.predict -c results/runs/cgcnn_band_gap_quick_s0.pt snapshot.jsonl.xz
  python -m lib.predict -c run_s0.pt -c run_s1.pt -c run_s2.pt structures/*.cif   (your own ensemble)
  python -m lib.predict --list
  python -m lib.predict --voltage Li LiFePO4.cif                 (voltage ± σ; charged state built and relaxed)
  python -m lib.predict --voltage Li LiFePO4.cif --charged FePO4.cif

inputs: CIF files, CGCNN-format folders (id_prop.csv + <id>.cif, or just *.cif) and JSON Lines snapshots
(.jsonl, .jsonl.xz: the mirror's format). Exit status 1 when nothing could be predicted, 2 on a usage error.
"""


def _voltage(ap: argparse.ArgumentParser, args) -> int:
    """``--voltage ION``: one row per discharged CIF (voltage, σ, the universal potential's, whether the charged
    state was built)."""
    from lib.cathodes.voltage_model import predict_voltage  # here: CHGNet only when a voltage is asked for

    if not args.inputs:
        ap.error("no discharged structure given")
    if args.charged and len(args.inputs) != 1:
        ap.error("--charged goes with exactly one discharged CIF")
    rows = []
    for path in args.inputs:
        try:
            rows.append({"source": path, **predict_voltage(path, args.voltage, charged=args.charged)})
        except (ValueError, OSError, StructureError) as exc:
            rows.append({"source": path, "ion": args.voltage, "error": _reason(exc)})
    df = pd.DataFrame(rows)
    df["error"] = df.get("error", pd.Series("", index=df.index)).fillna("")
    if args.out:
        df.to_csv(args.out, index=False)
    else:
        df.to_csv(sys.stdout, index=False, float_format="%.3f")
    ok = df["error"].eq("")
    print(f"{int(ok.sum())} voltage(s) predicted, {int((~ok).sum())} could not be", file=sys.stderr)
    return 0 if ok.any() else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lib.predict (--model NAME | -c CHECKPOINT ...) INPUT... [--out file.csv]``."""
    ap = argparse.ArgumentParser(
        prog="python -m lib.predict", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Predict a property of crystal structures with a shipped model (pretrained/), a trained "
                    "checkpoint or an ensemble of checkpoints (mean and σ).", epilog=EXAMPLES)
    ap.add_argument("inputs", nargs="*", help="CIF files, folders, or .jsonl/.jsonl.xz snapshots")
    ap.add_argument("--model", "-m", help="a shipped model: a property (formation_energy_per_atom, band_gap, "
                    "...), a short name (formation_energy, gap, ...) or a folder name of pretrained/")
    ap.add_argument("--checkpoint", "-c", action="append", default=[],
                    help="a .pt checkpoint written by lib.train.fit; repeat it for an ensemble")
    ap.add_argument("--list", action="store_true", help="list the shipped models and the checkpoints found")
    ap.add_argument("--voltage", metavar="ION", help="the average insertion voltage (V, ± σ) of each discharged CIF "
                    "for this working ion, with the shipped voltage model (lib.cathodes.voltage_model)")
    ap.add_argument("--charged", help="with --voltage and one CIF: the charged state's CIF (default: built by "
                    "removing the ion and relaxing with CHGNet)")
    ap.add_argument("--out", help="write the table to this CSV file (default: print it)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    args = ap.parse_args(argv)
    if args.list:
        found = found_checkpoints()
        with pd.option_context("display.width", 200, "display.max_colwidth", 90):
            print(found.to_string(index=False) if len(found) else "no shipped model and no checkpoint found")
        return 0
    if args.voltage:
        return _voltage(ap, args)
    # the older form: the first input is a checkpoint (python -m lib.predict CHECKPOINT INPUT...)
    if not args.model and not args.checkpoint and args.inputs and args.inputs[0].endswith(".pt"):
        args.checkpoint, args.inputs = [args.inputs[0]], args.inputs[1:]
    if not args.model and not args.checkpoint:
        ap.error("say what to predict with: --model NAME (see --list) or -c CHECKPOINT")
    if not args.inputs:
        ap.error("no input structures given")
    try:
        pred = load_predictor(args.model, args.checkpoint, args.device)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = predict(pred, args.inputs, out=args.out, batch_size=args.batch_size)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    n_bad = int((df["error"] != "").sum())
    if args.out is None:
        df.to_csv(sys.stdout, index=False)
    what = f"{len(pred.checkpoints)} checkpoints (mean, σ)" if len(pred.checkpoints) > 1 else \
        pred.first.model.__class__.__name__
    print(f"{len(df) - n_bad} structure(s) predicted with {what} ({pred.column}), {n_bad} could not be"
          + (f"; table in {args.out}" if args.out else ""), file=sys.stderr)
    for _, row in df[df["error"] != ""].iterrows():
        print(f"  {row['id']} ({row['source']}): {row['error']}", file=sys.stderr)
    return 0 if len(df) > n_bad else 1


if __name__ == "__main__":
    raise SystemExit(main())
