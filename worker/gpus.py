"""One worker per GPU: pin a worker process (and the pool processes it starts) to one device.

CUDA reads CUDA_VISIBLE_DEVICES when it initialises, so the variable is set before anything
imports torch; the pinned GPU is then `cuda:0` inside the worker, and the node is named after
it so that a job's `worker` field says which GPU ran it.
"""

from __future__ import annotations

import os
import socket


def pin_to_gpu(index: int, name: str | None) -> str:
    """Make GPU `index` the only one this process and its children see; returns the node name
    (`name`, or gpuINDEX@HOST)."""
    if index < 0:
        raise ValueError(f"a GPU index is 0 or more, got {index}")
    os.environ["CUDA_VISIBLE_DEVICES"] = str(index)
    return name or f"gpu{index}@{socket.gethostname()}"
