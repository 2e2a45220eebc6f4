"""Format checks of an uploaded checkpoint, without loading it (the API never imports torch).

Whether the weights fit the claimed `arch` is decided by a worker afterwards; here we only
refuse what can never load: the wrong suffix, a `.pt` that is not torch's zip format (the
legacy raw-pickle format is refused too: it can only be read by executing pickle), or a
`.safetensors` file whose header is not a well-formed table of tensors inside the file, and
a `.pt` whose pickle would import anything but tensor machinery (see pickle_scan.py).
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

from service.api.errors import InvalidUpload
from service.api.validation.pickle_scan import UnsafePickle, check_state_dict_pickle

SUFFIXES = {".pt": "pt", ".pth": "pt", ".safetensors": "safetensors"}
# safetensors caps its own header at 100 MB; a larger claim is a corrupt or hostile file.
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024
# torch's data.pkl for a large ResNet is a few hundred kB.
MAX_PICKLE_BYTES = 64 * 1024 * 1024
_LOC = ["body", "file"]


def checkpoint_format(filename: str) -> str:
    """The stored format name for an upload's file name, or a 422 naming the suffix."""
    suffix = Path(filename).suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidUpload(
            f"checkpoint {filename!r} must end in .pt, .pth or .safetensors", loc=_LOC
        )
    return SUFFIXES[suffix]


def check_checkpoint(path: Path, fmt: str) -> None:
    """Raise InvalidUpload unless the file at `path` is plausibly a checkpoint of `fmt`."""
    if path.stat().st_size == 0:
        raise InvalidUpload("the checkpoint file is empty", loc=_LOC)
    if fmt == "pt":
        _check_torch_zip(path)
    else:
        _check_safetensors(path)


def _check_torch_zip(path: Path) -> None:
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != b"PK\x03\x04":
        raise InvalidUpload(
            "not a torch zip checkpoint (the legacy pickle format is not accepted; "
            "re-save it with torch.save)",
            loc=_LOC,
        )
    try:
        with zipfile.ZipFile(path) as zf:
            # torch.save writes "<archive>/data.pkl" next to the tensor storages.
            pickles = [i for i in zf.infolist() if i.filename.rsplit("/", 1)[-1] == "data.pkl"]
            if not pickles:
                raise InvalidUpload("zip file has no data.pkl: not written by torch.save", loc=_LOC)
            for info in pickles:
                _check_pickle(zf, info)
    except zipfile.BadZipFile as exc:
        raise InvalidUpload(f"corrupt checkpoint archive: {exc}", loc=_LOC) from None


def _check_pickle(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    # The pickle holds only the dict's structure (tensor bytes are separate members), so it
    # is small; the cap bounds what a hostile file can make us read and parse.
    if info.file_size > MAX_PICKLE_BYTES:
        raise InvalidUpload(f"{info.filename} is larger than {MAX_PICKLE_BYTES} bytes", loc=_LOC)
    try:
        with zf.open(info) as fh:
            data = fh.read(MAX_PICKLE_BYTES + 1)
        if len(data) > MAX_PICKLE_BYTES:
            raise InvalidUpload(f"{info.filename} is larger than declared", loc=_LOC)
        check_state_dict_pickle(data)
    except UnsafePickle as exc:
        raise InvalidUpload(
            f"not a plain tensor checkpoint: {exc}; only state dicts of tensors are accepted "
            "(a pickled object could run code when loaded)",
            loc=_LOC,
        ) from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:  # CRC, bad deflate
        raise InvalidUpload(f"corrupt checkpoint archive: {exc}", loc=_LOC) from None


def _check_safetensors(path: Path) -> None:
    size = path.stat().st_size
    with path.open("rb") as fh:
        prefix = fh.read(8)
        if len(prefix) < 8:
            raise InvalidUpload("safetensors file is shorter than its header length", loc=_LOC)
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len == 0 or header_len > MAX_SAFETENSORS_HEADER or 8 + header_len > size:
            raise InvalidUpload("safetensors header length is out of range", loc=_LOC)
        raw = fh.read(header_len)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidUpload("safetensors header is not JSON", loc=_LOC) from None
    if not isinstance(header, dict):
        raise InvalidUpload("safetensors header is not a JSON object", loc=_LOC)
    data_size = size - 8 - header_len
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    if not tensors:
        raise InvalidUpload("safetensors file holds no tensors", loc=_LOC)
    for name, info in tensors.items():
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if (
            not isinstance(info, dict)
            or not isinstance(info.get("dtype"), str)
            or not isinstance(info.get("shape"), list)
            or not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_size
        ):
            raise InvalidUpload(f"safetensors entry {name!r} is malformed", loc=_LOC)
