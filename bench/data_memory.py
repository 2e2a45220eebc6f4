"""Peak memory of `edgeprune compress` against the size of the edge task's data.

Generates ImageFolder trees of 64×64 PNGs (smooth class-coloured gradients with noise, so
the files compress like photographs rather than like noise), runs the real CLI on each in a
fresh process and reads that process's own peak RSS from `wait4`. Images are decoded a
batch at a time (`pruning.data.samples`), so the goal is a peak that does not grow with the
number of images: the largest tree's peak ≤ 1.2× the smallest's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.common import environment, save

CLASSES = 10
SIZE = 64


def write_tree(root: Path, images: int, seed: int = 0) -> Path:
    """`images` PNGs in CLASSES folders: each class a hue, each image a shifted gradient."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 1.0, SIZE, dtype=np.float32)
    for index in range(images):
        label = index % CLASSES
        folder = root / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        hue = np.array([(label * 37) % 256, (label * 91) % 256, (label * 53) % 256], np.float32)
        angle = rng.uniform(0, 2 * np.pi)
        field = np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None]
        pixels = hue[None, None, :] * (0.5 + 0.5 * field[..., None])
        pixels += rng.normal(0, 12, pixels.shape)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"{index}.png")
    return root


def peak_rss_of(command: Sequence[str]) -> tuple[float, float, int]:
    """Run `command`; its own peak RSS (MiB, from wait4, children excluded), seconds, rc."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    rc = os.waitstatus_to_exitcode(status)
    process.returncode = rc
    if rc != 0 and process.stderr is not None:
        sys.stderr.write(process.stderr.read().decode(errors="replace")[-3000:])
    return usage.ru_maxrss / 1024.0, seconds, rc  # ru_maxrss is KiB on Linux


def compress_command(tree: Path, out: Path, args: argparse.Namespace) -> list[str]:
    return [
        sys.executable, "-m", "edgeprune", "compress",
        "--arch", args.arch, "--width-mult", str(args.width),
        "--data", str(tree), "--target", "flops=0.5", "--out", str(out),
        "--structure-epochs", "1", "--finetune-epochs", "1",
        "--calibration-batches", "4", "--batch-size", "64",
        "--device", "cpu", "--data-workers", str(args.workers),
    ]  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgeprune-datamem-") as tmp:
        for images in args.images:
            tree = write_tree(Path(tmp) / f"tree-{images}", images)
            on_disk = sum(p.stat().st_size for p in tree.rglob("*.png"))
            peak, seconds, rc = peak_rss_of(compress_command(tree, Path(tmp) / "out", args))
            row = {
                "images": images,
                "png_mib_on_disk": round(on_disk / 2**20, 1),
                "float32_mib_if_decoded": round(images * 3 * SIZE * SIZE * 4 / 2**20, 1),
                "peak_rss_mib": round(peak, 1),
                "seconds": round(seconds, 1),
                "exit_code": rc,
            }
            print(row, flush=True)
            rows.append(row)
    smallest, largest = rows[0]["peak_rss_mib"], rows[-1]["peak_rss_mib"]
    return {
        "environment": environment(),
        "settings": {
            "arch": args.arch,
            "width_mult": args.width,
            "image_size": SIZE,
            "classes": CLASSES,
            "data_workers": args.workers,
            "epochs": "1 structure + 1 weight learning",
            "batch_size": 64,
        },
        "results": rows,
        "peak_ratio_largest_over_smallest": round(largest / smallest, 3),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--arch", default="vgg11")
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--workers", type=int, default=0, help="--data-workers of the runs")
    parser.add_argument("--name", default="data_memory")
    args = parser.parse_args(argv)
    payload = run(args)
    print("peak RSS ratio (largest / smallest):", payload["peak_ratio_largest_over_smallest"])
    save(args.name, payload)


if __name__ == "__main__":
    main()
