"""A device chooses which published form of the model to run (fp32 or int8)."""

from __future__ import annotations

import pytest

from edge_client.errors import ServerError
from edge_client.manifest import Manifest

FP32, INT8 = "a" * 64, "b" * 64
BODY = {
    "deployment": "cams",
    "version": 3,
    "job_id": "job_1",
    "sha256": FP32,
    "size": 200,
    "url": f"http://srv/v1/artifacts/{FP32}",
    "variants": [
        {"name": "fp32", "sha256": FP32, "size": 200, "url": f"http://srv/v1/artifacts/{FP32}"},
        {"name": "int8", "sha256": INT8, "size": 80, "url": f"http://srv/v1/artifacts/{INT8}"},
    ],
    "preprocessing": {"layout": "NCHW", "mean": [0.5], "std": [0.25], "value_scale": 0.0039},
}


def test_auto_takes_int8_when_published_and_fp32_otherwise() -> None:
    chosen = Manifest.from_json(BODY, '"3-x"', "auto")
    assert (chosen.variant, chosen.sha256, chosen.size) == ("int8", INT8, 80)
    assert chosen.url.endswith(INT8) and chosen.preprocessing == BODY["preprocessing"]
    only_fp32 = {**BODY, "variants": BODY["variants"][:1]}
    assert Manifest.from_json(only_fp32, None, "auto").variant == "fp32"
    assert Manifest.from_json(only_fp32, None, "int8").sha256 == FP32  # falls back, says so
    assert Manifest.from_json(BODY, None, "fp32").sha256 == FP32


def test_auto_keeps_fp32_when_the_worker_timed_int8_slower() -> None:
    def offering(speed: object) -> dict[str, object]:
        fp32, int8 = BODY["variants"]  # type: ignore[misc]
        return {**BODY, "variants": [fp32, {**int8, "speed_over_fp32": speed}]}

    assert Manifest.from_json(offering(0.94), None, "auto").variant == "fp32"
    assert Manifest.from_json(offering(1.6), None, "auto").variant == "int8"
    assert Manifest.from_json(offering(None), None, "auto").variant == "int8"  # not measured
    assert Manifest.from_json(offering(0.94), None, "int8").variant == "int8"  # asked for it


def test_an_installed_manifest_keeps_its_variant_and_old_servers_still_work() -> None:
    chosen = Manifest.from_json(BODY, None, "int8")
    saved = Manifest.from_json(chosen.to_json())  # as state.py reads current/manifest.json
    assert (saved.variant, saved.sha256) == ("int8", INT8)
    old = {k: v for k, v in BODY.items() if k not in ("variants", "preprocessing")}
    legacy = Manifest.from_json(old, None, "auto")
    assert (legacy.variant, legacy.sha256, legacy.preprocessing) == ("fp32", FP32, None)


def test_an_unknown_variant_is_refused() -> None:
    with pytest.raises(ServerError, match="variant must be one of auto, fp32, int8"):
        Manifest.from_json(BODY, None, "int4")
