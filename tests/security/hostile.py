"""Builders of hostile and broken inputs: pickles carrying code, archives that escape or
explode, images that cannot be read. Every builder returns bytes; nothing here runs them."""

from __future__ import annotations

import io
import pickle
import tarfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image


class CreatesFile:
    """Unpickling this runs `exec`, which creates `marker`: a pickle carrying code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def torch_bytes(obj: Any, protocol: int = 2) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, pickle_protocol=protocol)
    return buffer.getvalue()


def code_checkpoints(marker: Path) -> dict[str, bytes]:
    """Checkpoints that would create `marker` if unpickled, in every shape we know of."""
    payload = CreatesFile(marker)
    weights = {"features.0.weight": torch.zeros(2, 1, 3, 3)}
    return {
        "legacy-pickle": pickle.dumps(payload, protocol=2),
        "torch-zip": torch_bytes(payload),
        "hidden-in-state-dict": torch_bytes({**weights, "extra": payload}),
        "hidden-in-structure": torch_bytes({"state_dict": weights, "structure": payload}),
        "protocol-4": torch_bytes({**weights, "extra": payload}, protocol=4),
    }


def png(size: tuple[int, int] = (8, 8), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, "PNG")
    return buffer.getvalue()


def bomb_png() -> bytes:
    """12000 x 12000 pixels (144 Mpx) in 17 kB: decoding it would take 400+ MB."""
    buffer = io.BytesIO()
    Image.new("1", (12000, 12000)).save(buffer, "PNG")
    return buffer.getvalue()


def images(classes: tuple[str, ...] = ("cat", "dog"), per_class: int = 2) -> dict[str, bytes]:
    return {f"{c}/{i}.png": png() for c in classes for i in range(per_class)}


def zip_of(
    members: dict[str, bytes], *, symlink: tuple[str, str] | None = None, deflate: bool = False
) -> bytes:
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink is not None:
            info = zipfile.ZipInfo(symlink[0])
            info.external_attr = 0o120777 << 16  # S_IFLNK: what `zip --symlinks` writes
            zf.writestr(info, symlink[1])
    return buffer.getvalue()


def zip_with_a_duplicate(members: dict[str, bytes], name: str) -> bytes:
    """A zip holding `name` twice (zipfile warns, and writes it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            zf.writestr(name, members.get(name, b""))
    return buffer.getvalue()


def tar_of(members: dict[str, bytes], *, link: tuple[str, str, bytes] | None = None) -> bytes:
    """A .tar.gz; `link` is (name, target, tarfile type) for a symlink, hard link or device."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if link is not None:
            info = tarfile.TarInfo(link[0])
            info.type, info.linkname = link[2], link[1]
            tf.addfile(info)
    return buffer.getvalue()


def zip_bomb() -> bytes:
    """40 MiB of zeros in a 40 kB zip, next to a valid tree."""
    return zip_of({**images(), "cat/big.png": b"\0" * (40 * 1024 * 1024)}, deflate=True)


def npz(compressed: bool = False, **arrays: Any) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def npz_bomb() -> bytes:
    """300 MB of float zeros in a 300 kB .npz."""
    return npz(True, x=np.zeros((300, 1, 512, 512), np.float32), y=np.arange(300) % 2)
