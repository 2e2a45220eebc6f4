"""What every benchmark records next to its numbers: the machine and the versions."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.int8_isa import int8_isa

RESULTS = Path(__file__).parent / "results"


def environment() -> dict[str, Any]:
    import numpy
    import onnxruntime
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            cpu = names[0]
    except OSError:
        pass
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": cpu,
        # The model name alone does not tell CPUs apart (one "AMD EPYC" has AVX-512, another
        # AVX2 only): the kernels, and so the floating-point results, follow these features.
        "cpu_features": int8_isa(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": numpy.__version__,
        "cuda": torch.cuda.is_available(),
        # The CPU may be shared (other jobs, other engineers): timings need this context.
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
    }


def save(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path}")
    return path
