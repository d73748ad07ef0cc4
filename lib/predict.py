"""Predict a property for new structures with a trained checkpoint (CGCNN, MEGNet: any graph model).

    python -m lib.predict results/runs/cgcnn_band_gap_thesis_s0.pt my.cif more/*.cif --out pred.csv
    python -m lib.predict CHECKPOINT path/to/cgcnn_folder            # id_prop.csv + <id>.cif, or *.cif
    python -m lib.predict CHECKPOINT snapshot.jsonl.xz               # the mirror's JSON Lines format

One row per structure: ``id`` (the material id, or the CIF's file name), ``source`` (the file it came
from), the prediction in a column named with the property and its unit (e.g. ``band_gap [eV]``), and
``error``: empty, or why that structure could not be read or predicted (an unparseable CIF, a broken
snapshot line, a missing file, an atom without neighbours). The rest always goes on.

The checkpoint names its model class (``lib.models`` registry), the graph parameters and the target
normaliser, so the same code serves every graph model, and ``map_location`` lets a checkpoint written
on CUDA run on a CPU-only machine and the other way round.
"""

from __future__ import annotations

import argparse
import gzip
import json
import lzma
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lib.records import Checkpoint, load_checkpoint
from lib.structures import Crystal, StructureError, crystal_from_arrays
from lib.validate import check_arrays

SNAPSHOT_SUFFIXES = (".jsonl", ".jsonl.xz", ".jsonl.gz", ".json.xz", ".json.gz")

Item = tuple[str, str, "Crystal | None", str]  # (id, source, crystal or None, error)


def _parse_cif_text(text: str) -> Crystal:
    try:
        from lib.structures import parse_cif
    except ImportError:  # an older lib.structures: pymatgen's parser
        from pymatgen.core import Structure

        return Crystal.from_structure(Structure.from_str(text, fmt="cif"))
    return parse_cif(text)


def _reason(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    reason = getattr(exc, "reason", None)
    text = msg[-1] if msg else type(exc).__name__
    return f"{reason}: {text}" if reason and reason not in text else text


def read_cif(path: str | Path, id: str | None = None) -> Item:
    """One CIF file as an item ``(id, source, crystal, error)``; never raises for a bad file."""
    path = Path(path)
    ident = id if id is not None else path.name
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return ident, str(path), None, f"cannot read file: {exc.strerror or exc}"
    try:
        return ident, str(path), _parse_cif_text(text), ""
    except Exception as exc:  # noqa: BLE001 - any parser failure is reported for this file only
        read = getattr(exc, "reason", "unparseable CIF") in ("unparseable CIF", "no structure")
        return ident, str(path), None, f"{'unreadable CIF' if read else 'invalid structure'}: {_reason(exc)}"


def read_folder(folder: str | Path) -> list[Item]:
    """A CGCNN-format folder (``id_prop.csv`` + ``<id>.cif``), or else every ``*.cif`` in it."""
    folder = Path(folder)
    listing = folder / "id_prop.csv"
    if listing.exists():
        items = []
        for k, line in enumerate(listing.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            mid = line.split(",")[0].strip()
            cif = folder / f"{mid}.cif"
            try:  # an id may be no file name at all (NUL bytes, too long): an error row, not a traceback
                found = cif.is_file() and folder.resolve() in cif.resolve().parents
            except (OSError, ValueError):
                found = False
            if not found:
                items.append((mid, str(listing), None, f"id_prop.csv line {k}: no file {cif.name}"))
            else:
                items.append(read_cif(cif, id=mid))
        return items
    cifs = sorted(folder.glob("*.cif"))
    if not cifs:
        return [(folder.name, str(folder), None, "folder has neither id_prop.csv nor *.cif files")]
    return [read_cif(p, id=p.stem) for p in cifs]


def _open_text(path: Path):
    name = path.name
    if name.endswith(".xz"):
        return lzma.open(path, "rt", encoding="utf-8")
    if name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_snapshot(path: str | Path) -> list[Item]:
    """A JSON Lines snapshot (``.jsonl``, ``.jsonl.xz``, ``.jsonl.gz``): one material per line.

    Each line has ``material_id`` and the structure as ``crystal`` (exact arrays: lattice, frac_coords,
    numbers) or ``cif``; a line that is not JSON or has no readable structure becomes an error row.
    """
    path = Path(path)
    items: list[Item] = []
    try:
        fh = _open_text(path)
        lines = enumerate(fh, 1)
        for k, line in lines:
            if not line.strip():
                continue
            ident = f"{path.name}:{k}"
            try:
                rec = json.loads(line)
                ident = str(rec.get("material_id", ident))
                if rec.get("crystal") is not None:
                    c = rec["crystal"]
                    crystal = crystal_from_arrays(c["lattice"], c["frac_coords"], c["numbers"])
                elif rec.get("cif"):
                    crystal = _parse_cif_text(rec["cif"])
                else:
                    raise ValueError("no 'crystal' or 'cif' field")
                items.append((ident, str(path), crystal, ""))
            except Exception as exc:  # noqa: BLE001 - one bad line never stops the file
                items.append((ident, str(path), None, f"line {k}: {_reason(exc)}"))
        fh.close()
    except (OSError, EOFError, lzma.LZMAError) as exc:
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
            items.append((p.name, str(p), None, "no such file or folder"))
        elif p.name.lower().endswith(".cif"):
            items.append(read_cif(p))
        elif p.name.lower().endswith(SNAPSHOT_SUFFIXES):
            items += read_snapshot(p)
        else:
            items.append((p.name, str(p), None, "unsupported input: give .cif files, a folder, or a "
                          ".jsonl/.jsonl.xz snapshot"))
    return items


class _GraphList:
    """A list of graphs with the ``batch(indices)`` interface of ``GraphSet``."""

    def __init__(self, graphs):
        self.graphs = graphs

    def batch(self, indices):
        from lib.graphs import collate

        return collate([self.graphs[i] for i in indices])


def _graph_params(ckpt: Checkpoint):
    from lib.graphs import GraphParams

    if not ckpt.graph_params:
        raise ValueError(f"{ckpt.path} has no graph parameters: not a graph model's checkpoint")
    return GraphParams.from_dict(ckpt.graph_params)


def predict_crystals(
    checkpoint: Checkpoint | str | Path,
    crystals: Sequence[Crystal],
    batch_size: int = 256,
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Predictions for crystals: (n,) in the target's units (NaN where it failed), and the reasons.

    For a classifier the values are the predicted class. Structures are batched; a batch that fails
    is retried one structure at a time, so one bad structure costs only its own row.
    """
    from lib.graphs import _as_crystal, build_graph

    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint, device)
    params = _graph_params(ckpt)
    n = len(crystals)
    values = np.full(n, np.nan)
    errors = [""] * n
    graphs: list = [None] * n
    for i, c in enumerate(crystals):
        try:  # the crystals may come from anywhere: the same checks as every parser's
            c = _as_crystal(c)
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


def predict(
    checkpoint: Checkpoint | str | Path,
    inputs: Iterable[str | Path],
    out: str | Path | None = None,
    batch_size: int = 256,
    device: str | torch.device | None = None,
) -> pd.DataFrame:
    """Read ``inputs`` (CIFs, folders, snapshots), predict, and return (and write to ``out``) the table."""
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint, device)
    items = read_inputs(inputs)
    good = [k for k, it in enumerate(items) if it[2] is not None]
    values, errors = predict_crystals(ckpt, [items[k][2] for k in good], batch_size=batch_size)
    col = ckpt.column if ckpt.task != "classification" else f"{ckpt.target} [class]"
    pred = np.full(len(items), np.nan)
    err = [it[3] for it in items]
    for j, k in enumerate(good):
        pred[k] = values[j]
        err[k] = errors[j]
    df = pd.DataFrame({"id": [it[0] for it in items], "source": [it[1] for it in items], col: pred,
                       "error": err})
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(out, index=False)
    return df


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: ``python -m lib.predict CHECKPOINT INPUT... [--out file.csv]``."""
    ap = argparse.ArgumentParser(
        prog="python -m lib.predict",
        description="Predict a property with a trained checkpoint for CIF files, CGCNN-format folders "
                    "(id_prop.csv + <id>.cif, or just *.cif) and JSON Lines snapshots (.jsonl, .jsonl.xz).")
    ap.add_argument("checkpoint", help="a .pt checkpoint written by lib.train.fit (results/runs/*.pt)")
    ap.add_argument("inputs", nargs="+", help="CIF files, folders, or .jsonl/.jsonl.xz snapshots")
    ap.add_argument("--out", help="write the table to this CSV file (default: print it)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    args = ap.parse_args(argv)
    if not Path(args.checkpoint).exists():
        ap.error(f"no checkpoint {args.checkpoint}")
    ckpt = load_checkpoint(args.checkpoint, args.device)
    df = predict(ckpt, args.inputs, out=args.out, batch_size=args.batch_size)
    n_bad = int((df["error"] != "").sum())
    if args.out is None:
        df.to_csv(sys.stdout, index=False)
    print(f"{len(df) - n_bad} structure(s) predicted with {ckpt.model.__class__.__name__} ({ckpt.column}), "
          f"{n_bad} could not be" + (f"; table in {args.out}" if args.out else ""), file=sys.stderr)
    for _, row in df[df["error"] != ""].iterrows():
        print(f"  {row['id']} ({row['source']}): {row['error']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
