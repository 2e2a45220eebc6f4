"""The CPU's integer SIMD features, recorded beside INT8 timings: onnxruntime's int8 kernels
differ by them (AVX2 without VNNI, AVX-512 VNNI, AMX), so the same model's speedup does too."""

from __future__ import annotations

FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def int8_isa() -> list[str]:
    """The flags of FLAGS that /proc/cpuinfo lists (empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    present = set(line.split(":", 1)[1].split())
                    return [flag for flag in FLAGS if flag in present]
    except OSError:
        pass
    return []
