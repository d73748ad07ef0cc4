"""lib.paths.atomic_path: a write either lands whole or leaves the old file as it was."""

from __future__ import annotations

import os

import numpy as np
import pytest

from lib.paths import atomic_path


def test_success_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "table.npz"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".npz" and tmp != target
        np.savez(tmp, a=np.arange(3))  # savez keeps a name that already ends in .npz
    assert np.load(target)["a"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in target.parent.iterdir()) == ["table.npz"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600


def test_failure_keeps_the_old_file_and_cleans_up(tmp_path):
    target = tmp_path / "record.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half-writ")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]
