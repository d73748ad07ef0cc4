"""`make lab` starts JupyterLab on the whole project, as root (containers) and as a normal user, and it
answers on 127.0.0.1 with the notebooks listed."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from lib.paths import ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_and_list(tmp_path: Path, user: list[str]) -> list[str]:
    """Start `make lab` (as ``user``: a command prefix), list notebooks/ through the REST API, stop it."""
    port, token = _free_port(), secrets.token_hex(8)
    home = tmp_path / "home"
    home.mkdir(mode=0o777, exist_ok=True)
    home.chmod(0o777)
    env = dict(os.environ, HOME=str(home), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"))
    args = f"--no-browser --ip=127.0.0.1 --port={port} --ServerApp.token={token}"
    proc = subprocess.Popen([*user, "make", "-s", "-C", str(ROOT), "lab", f"LAB_ARGS={args}"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                url = f"http://127.0.0.1:{port}/api/contents/notebooks?token={token}"
                with urllib.request.urlopen(url, timeout=5) as resp:
                    listing = json.loads(resp.read())
                return sorted(item["name"] for item in listing["content"])
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode(errors="replace") if proc.poll() is not None else ""
                    raise AssertionError(f"JupyterLab did not answer on port {port}: {out[-2000:]}") from None
                time.sleep(1)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_make_lab_as_this_user(tmp_path):
    names = _serve_and_list(tmp_path, [])
    assert "01_fetch.ipynb" in names and "07_xgnn.ipynb" in names


def test_make_lab_asks_for_root_only_as_root(tmp_path):
    """--allow-root is passed as root and only as root. (The server itself cannot start as another user on
    this machine: the virtual environment's interpreter lives under /root. So a normal user's command is
    checked with `make -n`, as that user, which runs nothing.)"""
    def command(prefix: list[str]) -> str:
        out = subprocess.run([*prefix, "make", "-n", "-s", "-C", str(ROOT), "lab"], capture_output=True,
                             text=True, timeout=60, env=dict(os.environ, HOME=str(tmp_path)))
        assert out.returncode == 0, out.stderr
        return next(line for line in out.stdout.splitlines() if "jupyter lab" in line)

    mine = command([])
    assert "--ServerApp.root_dir=" in mine and "/lab/tree/notebooks" in mine
    assert ("--allow-root" in mine) == (os.getuid() == 0)
    if os.getuid() == 0:  # and as a normal user, the same command without it
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to drop privileges"
        tmp_path.chmod(0o777)
        theirs = command([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"])
        assert "--allow-root" not in theirs
        assert theirs.split() == [w for w in mine.split() if w != "--allow-root"]
