"""Model checkpoints: files read without executing code, fitted to models key by key, and
models rebuilt from them."""

from pruning.checkpoints.errors import CheckpointError, CheckpointMismatch, LoadReport
from pruning.checkpoints.files import STRUCTURE_KEY, read_checkpoint, save_checkpoint
from pruning.checkpoints.fitting import check_fits, load_into
from pruning.checkpoints.loading import infer_spec, load_model, model_from_state

__all__ = [
    "STRUCTURE_KEY",
    "CheckpointError",
    "CheckpointMismatch",
    "LoadReport",
    "check_fits",
    "infer_spec",
    "load_into",
    "load_model",
    "model_from_state",
    "read_checkpoint",
    "save_checkpoint",
]
