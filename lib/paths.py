"""Where the project keeps what it generates: data/, figures/, results/ under the project root."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(os.environ.get("COMPENDIUM_ROOT", Path(__file__).resolve().parent.parent))
DATA = ROOT / "data"
FIGURES = ROOT / "figures"
RESULTS = ROOT / "results"
RUNS = RESULTS / "runs"


def default_mirror() -> Path | None:
    """The local data mirror, if one is set (``COMPENDIUM_MIRROR``) or sits at ``../shared/data``."""
    env = os.environ.get("COMPENDIUM_MIRROR")
    if env:
        return Path(env)
    for cand in (ROOT.parent / "shared" / "data", ROOT / "shared" / "data"):
        if (cand / "mp_cgcnn_2020.jsonl.xz").exists():
            return cand
    return None
