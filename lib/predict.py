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
from lib.paths import RUNS
from lib.predictor import (  # noqa: F401 - the model side, re-exported for the callers of lib.predict
    MIN_TRAIN,
    CheckpointError,
    Predictor,
    _reason,
    load_predictor,
    open_checkpoint,
    predict_crystals,
)
from lib.records import Checkpoint
from lib.structures import Crystal, StructureError, crystal_from_arrays, parse_cif

Item = tuple[str, str, "Crystal | None", str]  # (id, source, crystal or None, error)


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
  python -m lib.predict --voltage Li LiFePO4.cif --charged FePO4.cif --model gnn   (the GNN voltage model)
  python -m lib.predict --voltage Li LiFePO4.cif --charged FePO4.cif
  python -m lib.predict --curve Li LiFePO4.cif --charged FePO4.cif --figure lfp.png  (voltage steps)
  python -m lib.predict --curve Li LiFePO4.cif --static               (static energies, no relaxation)
  python -m lib.predict --barrier Li LiFePO4.cif                 (Li migration barrier by NEB: table + figure)

inputs: CIF files, CGCNN-format folders (id_prop.csv + <id>.cif, or just *.cif) and JSON Lines snapshots
(.jsonl, .jsonl.xz: the mirror's format). Exit status 1 when nothing could be predicted, 2 on a usage error.
"""


def voltage_potential(ion: str, given: str | None) -> str:
    """The potential whose static voltage ``--voltage`` reports beside the voltage model's: ``--potential`` if given,
    else the electrode benchmark's best for the ion (:func:`lib.cathodes.defaults.potential_for`)."""
    from lib.cathodes.defaults import potential_for  # here: only for --voltage
    from lib.cathodes.potentials import POTENTIALS

    if given is not None and given not in POTENTIALS:
        raise ValueError(f"unknown potential {given!r}; known: {', '.join(sorted(POTENTIALS))}")
    return given or potential_for(ion)


def _voltage(ap: argparse.ArgumentParser, args) -> int:
    """``--voltage ION``: one row per discharged CIF (voltage, σ, the universal potential's, whether the charged
    state was built)."""
    from lib.cathodes.voltage_model import (  # here: the potentials only when a voltage is asked for
        KINDS,
        load,
        load_gnn,
        predict_voltage,
    )

    if not args.inputs:
        ap.error("no discharged structure given")
    if args.charged and len(args.inputs) != 1:
        ap.error("--charged goes with exactly one discharged CIF")
    kind = args.model or "delta"  # with --voltage, --model names the voltage model
    if kind not in KINDS:
        ap.error(f"with --voltage, --model is one of {', '.join(KINDS)} (not {kind!r})")
    model, rows = load()[0], []  # read once for all the inputs
    gnn = load_gnn() if kind == "gnn" else None
    try:
        potential = voltage_potential(args.voltage, args.potential)
    except ValueError as exc:
        ap.error(str(exc))
    for path in args.inputs:
        try:
            rows.append({"source": path, **predict_voltage(path, args.voltage, charged=args.charged, model=model,
                                                           potential=potential, kind=kind, gnn=gnn)})
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


def _curve(ap: argparse.ArgumentParser, args) -> int:
    """``--curve ION DISCHARGED.cif [--charged CHARGED.cif]``: the voltage steps of one pair
    (:func:`lib.cathodes.curves.voltage_curve`: intermediate orderings, the hull in ion content, pymatgen's
    electrode), one row per step, with the average voltage and the capacity below the cutoff."""
    from lib.cathodes.curves import plot_curve, voltage_curve  # here: the potentials only for a curve
    from lib.cathodes.potentials import get_potential

    if len(args.inputs) != 1:
        ap.error("--curve takes exactly one discharged CIF")
    try:
        potential = voltage_potential(args.curve, args.potential)
    except ValueError as exc:
        ap.error(str(exc))
    items = [read_cif(args.inputs[0])] + ([read_cif(args.charged)] if args.charged else [])
    bad = [f"{it[1]}: {it[3]}" for it in items if it[2] is None]
    if bad:
        print("error: " + "; ".join(bad), file=sys.stderr)
        return 1
    try:
        curve = voltage_curve(get_potential(potential), items[0][2], args.curve,
                              items[1][2] if args.charged else None, relax=not args.static,
                              cutoff=args.cutoff)
    except (ValueError, StructureError) as exc:
        print(f"error: {_reason(exc)}", file=sys.stderr)
        return 1
    if args.figure:
        plot_curve(curve, args.figure)
    df = curve.table(material=Path(args.inputs[0]).stem)
    if args.out:
        df.to_csv(args.out, index=False)
    else:
        df.to_csv(sys.stdout, index=False, float_format="%.3f")
    if not curve.ok:
        print(f"no voltage curve: {curve.error}", file=sys.stderr)
        return 1
    mode = "static" if args.static else "relaxed"
    print(f"{len(curve.steps)} step(s) with {curve.potential} ({mode}): average {curve.average_voltage:.2f} "
          f"V, {curve.capacity_grav:.0f} mAh/g, {curve.accessible_capacity:.0f} mAh/g below "
          f"{curve.cutoff:g} V" + (f"; skipped: {'; '.join(curve.skipped)}" if curve.skipped else ""),
          file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lib.predict (--model NAME | -c CHECKPOINT ...) INPUT... [--out file.csv]``."""
    ap = argparse.ArgumentParser(
        prog="python -m lib.predict", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Predict a property of crystal structures with a shipped model (pretrained/), a trained "
                    "checkpoint or an ensemble of checkpoints (mean and σ).", epilog=EXAMPLES)
    ap.add_argument("inputs", nargs="*", help="CIF files, folders, or .jsonl/.jsonl.xz snapshots")
    ap.add_argument("--model", "-m", help="a shipped model: a property (formation_energy_per_atom, band_gap, "
                    "...), a short name (formation_energy, gap, ...) or a folder name of pretrained/; with --voltage: "
                    "the voltage model, delta (default: the potential's voltage + the learned correction), gnn (the "
                    "CGCNN on both states) or potential (the potential's static voltage, its benchmark error as σ)")
    ap.add_argument("--checkpoint", "-c", action="append", default=[],
                    help="a .pt checkpoint written by lib.train.fit; repeat it for an ensemble")
    ap.add_argument("--list", action="store_true", help="list the shipped models and the checkpoints found")
    ap.add_argument("--voltage", metavar="ION", help="the average insertion voltage (V, ± σ) of each discharged CIF "
                    "for this working ion, with the shipped voltage model (lib.cathodes.voltage_model)")
    ap.add_argument("--barrier", nargs=2, metavar=("ION", "FILE.cif"),
                    help="the migration barrier (eV) of the ion's shortest hop in FILE.cif by climbing-image NEB "
                    "with a universal potential (--potential, default SevenNet-0; cached): the table and a figure "
                    "of the energy along the path (lib.cathodes.mobility)")
    ap.add_argument("--charged", help="with --voltage and one CIF: the charged state's CIF (default: built by "
                    "removing the ion and relaxing with CHGNet); with --curve: the charged end (default: "
                    "the discharged structure without the ion)")
    ap.add_argument("--potential", help="with --voltage: the universal potential whose static voltage (and its "
                    "benchmark σ) is reported beside the voltage model's (default: the electrode benchmark's best for "
                    "the ion, pretrained/potential_by_ion.csv)")
    ap.add_argument("--curve", metavar="ION", help="the voltage curve (steps, V and mAh/g) of one "
                    "discharged CIF for this working ion, from ion/vacancy orderings relaxed with "
                    "--potential (lib.cathodes.curves)")
    ap.add_argument("--static", action="store_true", help="with --curve: static energies, no relaxation")
    ap.add_argument("--cutoff", type=float, default=4.5, help="with --curve: the voltage below which the "
                    "accessible capacity is counted (default 4.5 V)")
    ap.add_argument("--figure", help="with --curve: save the curve as this PNG")
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
    if args.curve:
        return _curve(ap, args)
    if args.barrier:
        from lib.cathodes.mobility import barrier_cli  # here: the potentials only when a barrier is asked for

        return barrier_cli(*args.barrier, potential=args.potential, out=args.out, device=args.device)
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
