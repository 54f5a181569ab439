"""The machine a benchmark ran on, for its first line. Ratios between the PIL loop and
torch code depend on the CPU (the same code measured 9x on one 2-core machine of this
project and 13x on another), so every printed figure names its CPU."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def count_cpus(listing: str) -> int:
    """The number of CPUs in the kernel's list format: '0' -> 1, '0-1' -> 2, '0,2-3' -> 3."""
    count = 0
    for part in listing.split(","):
        first, _, last = part.partition("-")
        count += int(last or first) - int(first) + 1
    return count


def cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def describe() -> str:
    """E.g. 'Intel(R) Xeon(R) Processor, 2 CPUs, 1 thread per core, torch threads 2'."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parts = [cpu_model(), f"{cpus} CPUs"]
    siblings = _read("/sys/devices/system/cpu/cpu0/topology/thread_siblings_list").strip()
    if siblings:  # the hardware threads that share cpu0's core
        per_core = count_cpus(siblings)
        parts.append(f"{per_core} thread{'s' if per_core > 1 else ''} per core")
    parts.append(f"torch threads {torch.get_num_threads()}")
    if torch.cuda.is_available():
        parts.append(torch.cuda.get_device_name())
    return ", ".join(parts)
