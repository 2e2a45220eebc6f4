"""Edge task data: loading, splitting, normalising and batching (small float sources in
memory, image files and 8-bit arrays read a batch at a time)."""

from pruning.data.batches import iterate_batches, shift_and_mirror
from pruning.data.loader import inspect_dataset, load_task_data
from pruning.data.samples import Samples
from pruning.data.types import DataError, Inputs, TaskData

__all__ = [
    "DataError",
    "Inputs",
    "Samples",
    "TaskData",
    "inspect_dataset",
    "iterate_batches",
    "load_task_data",
    "shift_and_mirror",
]
