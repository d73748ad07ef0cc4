"""MP's insertion-electrode pairs with both end members' structures: one table of every pair (4,401 rows).

    pairs = load_electrode_pairs()          # every pair of the mirror's pairs file, both structures attached

The structures come from the mirror through :func:`lib.data.load_dataset`'s one reader (so they are parsed and
validated like every other structure of the compendium, and cached as parquet): the CGCNN file
(``mp_cgcnn_2020``, which also gives the 2020 DFT formation energies) first, then the electrode end members it
lacks (``mp_electrode_structures``). Columns: the pairs file's
(:func:`lib.data.sources.electrode_pairs.read_pairs`: ``high_*`` is the charged end, ``low_*`` the discharged
one, ``avg_voltage`` MP's voltage, ``ion``, ``z``) and

- ``charged`` / ``discharged``: :class:`lib.structures.Crystal` of each end;
- ``ef_charged`` / ``ef_discharged``: the mirror's DFT formation energies (eV/atom; NaN where the end is not
  in the CGCNN file: the electrode structures carry no energies);
- ``source_charged`` / ``source_discharged``: which file the structure came from;
- ``formula_charged`` / ``formula_discharged`` (the structures' reduced formulas) and ``formula_ok``.

Nothing is dropped silently: a pair whose structure is missing or refused by validation, or whose structure
does not make the pairs file's formula, is left out and listed in ``attrs["rejected"]`` (battery_id, reason,
detail), counted by reason in ``attrs["drops"]``. The electrochemical checks (frameworks that differ, an ion
content that does not grow on discharge) belong to :func:`lib.cathodes.electrodes.check_pair`, which every
voltage goes through and which names its reason per pair.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition

from lib.data.load import load_dataset
from lib.data.sources.electrode_pairs import read_pairs

#: where each end's structure may come from, in order of preference: (dataset name, label)
STRUCTURE_SOURCES = (("cgcnn", "mp_cgcnn_2020"), ("electrode_structures", "mp_electrode_structures"))


def load_electrode_pairs(
    mirror: str | Path | None = None,
    pairs_path: str | Path | None = None,
    progress: bool = False,
    verbose: bool = False,
) -> pd.DataFrame:
    """Every pair of MP's insertion electrodes with both structures (module docstring)."""
    pairs = read_pairs(
        pairs_path
        if pairs_path is not None
        else (Path(mirror) / "mp_insertion_electrodes.csv" if mirror is not None else None)
    )
    structures: dict[str, object] = {}
    source: dict[str, str] = {}
    ef: dict[str, float] = {}
    refused: dict[str, str] = {}
    for name, label in STRUCTURE_SOURCES:
        t = load_dataset(name, source="mirror", mirror=mirror, progress=progress, verbose=verbose)
        for mid, c, e in zip(t["material_id"], t["structure"], t["formation_energy_per_atom"], strict=True):
            if mid not in structures:
                structures[mid], source[mid], ef[mid] = c, label, float(e)
        rej = t.attrs.get("rejected")
        if rej is not None and len(rej):
            for mid, reason, detail in zip(rej["material_id"], rej["reason"], rej["detail"], strict=True):
                refused.setdefault(mid, f"{reason} in {label}: {detail}")
    rows, rejected = [], []
    for r in pairs.itertuples(index=False):
        problem = None
        for side, mid, formula in (
            ("charged", r.high_mpid, r.high_formula),
            ("discharged", r.low_mpid, r.low_formula),
        ):
            if mid not in structures:
                problem = problem or (
                    f"no {side} structure",
                    refused.get(mid, f"{mid} is in no structure file"),
                )
                continue
            got = structures[mid].formula
            if got != Composition(formula).reduced_formula:
                problem = problem or (
                    "formula mismatch",
                    f"the {side} structure {mid} is {got}, the pair says {formula}",
                )
        if problem:
            rejected.append((r.battery_id, *problem))
        rows.append(problem is None)
    keep = np.array(rows, bool)
    out = pairs[keep].reset_index(drop=True)
    out["charged"] = [structures[m] for m in out["high_mpid"]]
    out["discharged"] = [structures[m] for m in out["low_mpid"]]
    out["ef_charged"] = [ef[m] for m in out["high_mpid"]]
    out["ef_discharged"] = [ef[m] for m in out["low_mpid"]]
    out["source_charged"] = [source[m] for m in out["high_mpid"]]
    out["source_discharged"] = [source[m] for m in out["low_mpid"]]
    out["formula_charged"] = [c.formula for c in out["charged"]]
    out["formula_discharged"] = [c.formula for c in out["discharged"]]
    out["formula_ok"] = True  # the mismatches are in attrs["rejected"]
    rej = pd.DataFrame(rejected, columns=["battery_id", "reason", "detail"])
    out.attrs = {
        "n_pairs": len(pairs),
        "rejected": rej.to_dict(orient="list"),
        "drops": dict(Counter(rej["reason"])),
        "source": pairs.attrs.get("source", ""),
    }
    return out


def pair_ids(pairs: pd.DataFrame) -> list[str]:
    """Every distinct end member's material id of ``pairs`` (charged ends first), for energies of each
    once."""
    return list(dict.fromkeys([*pairs["high_mpid"], *pairs["low_mpid"]]))


__all__ = ["load_electrode_pairs", "pair_ids", "STRUCTURE_SOURCES"]
