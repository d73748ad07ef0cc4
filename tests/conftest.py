"""Shared fixtures: the real data mirror (../shared/data or COMPENDIUM_MIRROR)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.paths import default_mirror


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The offline mirror of real MP data; a missing mirror fails the test with what to do."""
    path = default_mirror()
    if path is None or not (path / "mp_cgcnn_2020.jsonl.xz").exists():
        pytest.fail(
            "no data mirror found: the tests read real Materials Project data from ../shared/data "
            f"(seen from the project root) or from $COMPENDIUM_MIRROR (now: {path}); "
            "put the mirror there or export COMPENDIUM_MIRROR=/path/to/mirror (see README, Data)",
            pytrace=False,
        )
    return path
