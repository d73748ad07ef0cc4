"""Worker processes that die with their parent.

A process pool's workers outlive a parent that is killed with SIGKILL (or dies of the OOM killer): they
are reparented to init and go on computing for minutes, at hundreds of MB each. Every pool of this
project (``lib.data.table._parse_all``, ``lib.graphs._build_arrays``) starts its workers with
:func:`die_with_parent` as initializer: on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` asks the kernel to
kill the worker when its parent dies, and a worker whose parent is already gone (it died between the
fork and the prctl) exits at once. ``lib.sweep`` does the same for its papermill processes.

Elsewhere (macOS, Windows) prctl does not exist: the call is a no-op there and the pools' own shutdown
is all there is.
"""

from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int) -> None:
    """Pool initializer: be killed (SIGKILL) when the parent dies; exit now if it is already gone.

    Give the parent's pid: ``Pool(initializer=die_with_parent, initargs=(os.getpid(),))``.
    """
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (AttributeError, OSError):  # not Linux
        pass
    if os.getppid() != parent_pid:
        os._exit(1)  # the parent died before the prctl: nothing to work for


__all__ = ["die_with_parent"]
