"""kill -9 of a data or graph build leaves no worker process behind (lib.procs.die_with_parent).

Each test starts the build in a subprocess on a synthetic input big enough for the process pool, waits
until the pool's workers run, kills the parent with SIGKILL and then looks through /proc for any process
that carries the subprocess's marker in its environment (workers inherit it, whoever their parent is
now): none may be left running a few seconds later."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from lib.paths import ROOT

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")

CIF = """# generated using pymatgen
data_NaCl
_symmetry_space_group_name_H-M   'P 1'
_cell_length_a   3.98806155
_cell_length_b   3.98806155
_cell_length_c   3.98806155
_cell_angle_alpha   60.00000000
_cell_angle_beta   60.00000000
_cell_angle_gamma   60.00000000
_symmetry_Int_Tables_number   1
_chemical_formula_structural   NaCl
_chemical_formula_sum   'Na1 Cl1'
_cell_volume   44.85244800
_cell_formula_units_Z   1
loop_
 _symmetry_equiv_pos_site_id
 _symmetry_equiv_pos_as_xyz
  1  'x, y, z'
loop_
 _atom_site_type_symbol
 _atom_site_label
 _atom_site_symmetry_multiplicity
 _atom_site_fract_x
 _atom_site_fract_y
 _atom_site_fract_z
 _atom_site_occupancy
  Na  Na0  1  0.00000000  0.00000000  0.00000000  1
  Cl  Cl1  1  0.50000000  0.50000000  0.50000000  1
"""

TABLE = """
import sys
from lib import data
data.load_dataset("big", source="mirror", mirror=sys.argv[1], cache_dir=sys.argv[2], n_jobs=2,
                  progress=False, verbose=False)
"""

GRAPHS = """
import sys
import numpy as np
from lib.graphs import build_graphs, megnet_params
from lib.structures import Crystal
rng = np.random.default_rng(0)
# 64 crystals of 2,000 atoms, all neighbours within 8 Å: chunks of 16 that take a worker ~5 s each, so
# that a worker which does not die with its parent is still there when the test looks
crystals = [Crystal(np.eye(3) * 28.0, rng.random((2000, 3)), np.full(2000, 8)) for _ in range(64)]
build_graphs(crystals, megnet_params(8.0), cache=False, n_jobs=2, progress=False, verbose=False,
             on_isolated="keep")
"""

#: how long the test waits after the kill for the workers to go (those of an unprotected pool stay
#: for minutes (ProcessPoolExecutor) or until their current chunk is done (multiprocessing.Pool))
GRACE = 3.0


def _marked(marker: str) -> dict[int, str]:
    """pid -> state of every process whose environment holds ``marker``."""
    found = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if marker.encode() in (d / "environ").read_bytes():
                found[int(d.name)] = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
    return found


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, ValueError, IndexError):
                continue
    return out


def _kill_during_build(script: str, args: list[str], tmp_path) -> tuple[int, dict, float]:
    marker = f"COMPENDIUM_TEST_MARK={uuid.uuid4().hex}"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1",
               COMPENDIUM_TEST_MARK=marker.split("=", 1)[1])
    proc = subprocess.Popen([sys.executable, "-c", script, *args], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while len(_children(proc.pid)) < 2:  # the pool's workers have started
            assert proc.poll() is None, f"the build ended before its pool: {proc.stderr.read()[-2000:]}"
            assert time.monotonic() < deadline, "no worker processes within 120 s"
            time.sleep(0.05)
        workers = _children(proc.pid)
        time.sleep(0.5)  # let them work
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        t0 = time.monotonic()
        left = _marked(marker)
        while any(state != "Z" for state in left.values()) and time.monotonic() - t0 < GRACE:
            time.sleep(0.1)
            left = _marked(marker)
        return len(workers), {p: s for p, s in left.items() if s != "Z"}, time.monotonic() - t0
    finally:
        for pid, state in _marked(marker).items():  # never leave anything behind, even when failing
            if state != "Z":
                os.kill(pid, signal.SIGKILL)
        proc.stderr.close()


def test_kill_9_of_a_table_build_leaves_no_worker(tmp_path):
    snap = tmp_path / "big.jsonl"
    with open(snap, "w") as fh:  # 12,000 rows: the parser's pool starts from 4,000
        for k in range(12_000):
            fh.write(json.dumps({"material_id": f"x-{k}", "cif": CIF, "band_gap": 1.0}) + "\n")
    n_workers, left, seconds = _kill_during_build(TABLE, [str(snap), str(tmp_path / "proc")], tmp_path)
    assert n_workers >= 2
    assert left == {}, f"worker processes left running after kill -9 of their parent: {left}"
    assert seconds < GRACE


def test_kill_9_of_a_graph_build_leaves_no_worker(tmp_path):
    n_workers, left, seconds = _kill_during_build(GRAPHS, [], tmp_path)
    assert n_workers >= 2
    assert left == {}, f"worker processes left running after kill -9 of their parent: {left}"
    assert seconds < GRACE
