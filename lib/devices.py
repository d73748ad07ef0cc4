"""Which torch device a run uses, and what that device is (for run records).

``pick_device(None)`` is cuda when available, else cpu; :func:`device_info` describes a device for a record
(its type and name: the CPU's model or the CUDA device's; torch threads, versions, host).
"""

from __future__ import annotations

import os
import platform
from typing import Any

import torch


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else cuda when available, else cpu."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_name() -> str:
    """The CPU's model string (e.g. 'AMD EPYC 7R13 Processor')."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_info(device: torch.device | str) -> dict[str, Any]:
    """Where a run ran: device type and name (CPU model or CUDA device name), torch threads, versions."""
    device = torch.device(device)
    info: dict[str, Any] = {"type": device.type, "torch_threads": torch.get_num_threads(),
                            "cpu": cpu_name(), "cpu_count": os.cpu_count(), "host": platform.node(),
                            "torch": str(torch.__version__), "python": platform.python_version()}
    if device.type == "cuda":
        info["name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    else:
        info["name"] = info["cpu"]
    return info


__all__ = ["pick_device", "cpu_name", "device_info"]
