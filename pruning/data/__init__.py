"""Edge task data: loading, splitting, normalising and batching, all in memory as tensors."""

from pruning.data.batches import iterate_batches, shift_and_mirror
from pruning.data.loader import inspect_dataset, load_task_data
from pruning.data.types import DataError, TaskData

__all__ = [
    "DataError",
    "TaskData",
    "inspect_dataset",
    "iterate_batches",
    "load_task_data",
    "shift_and_mirror",
]
