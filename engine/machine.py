"""What machine a figure was measured on (engine.benchmark and bench.run print it)."""
from __future__ import annotations

import os
import platform


def cpu_description() -> str:
    """This machine's CPU model, its widest vector extensions and CPU count. Timings depend on
    them: the same engine read a photo about 1.7 times slower on an AVX2-only 2-core machine
    than on an AVX-512/AMX one, so a figure is only meaningful with the machine it came from."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), platform.machine())
    flags = set(next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), []))
    vector = [f for f in ("avx2", "avx512f", "avx512_vnni", "amx_tile") if f in flags]
    return f"{model} ({', '.join(vector) or 'no AVX2'}), {os.cpu_count()} CPUs"
