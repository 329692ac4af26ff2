"""A one-line description of the machine, printed with every benchmark."""

from __future__ import annotations

import os
import platform


def machine_info() -> dict[str, str | int]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info: dict[str, str | int] = {"cpu": cpu, "cores": os.cpu_count() or 1,
                                  "python": platform.python_version(),
                                  "system": f"{platform.system()} {platform.release()}"}
    # code generation restricted by the user (e.g. to measure the AVX2 paths on an AVX-512 CPU)
    limits = [f"{k}={os.environ[k]}" for k in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES",
                                               "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")
              if os.environ.get(k)]
    if limits:
        info["codegen"] = " ".join(limits)
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


def machine_line() -> str:
    return ", ".join(f"{k} {v}" for k, v in machine_info().items())
