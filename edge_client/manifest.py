"""The manifest a device polls, read by the names of edgeprune.contracts.edge.Manifest.

The same reader takes the copy this client saves beside an installed model
(current/manifest.json, see `Manifest.to_json`), which has no `variants` but says which one
was chosen. A manifest from an older server, without `variants` or `preprocessing`, is read
as an fp32-only one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

from edgeprune.contracts import edge as contract

from .errors import ServerError

log = logging.getLogger("edge_client.manifest")

# What a device may ask for: a published variant, or "auto" (int8 when there is one and the
# server did not measure it slower than fp32).
VariantChoice = Literal["auto", contract.Variant]
VARIANT_CHOICES: tuple[str, ...] = ("auto", *contract.VARIANTS)


class _Read(contract.Manifest, total=False):
    """A manifest as this client reads it: the server's fields, and what `to_json` adds."""

    etag: str | None
    variant: str
    fp32_url: str | None
    fp32_sha256: str | None
    fp32_size: int | None


@dataclass(frozen=True)
class Manifest:
    """What the server says a deployment should run now; `etag` is the response's ETag."""

    deployment: str
    version: int
    sha256: str
    size: int
    url: str
    job_id: str | None = None
    baseline_url: str | None = None
    baseline_sha256: str | None = None
    input_shape: tuple[int, ...] | None = None
    classes: tuple[str, ...] | None = None
    flops: int | None = None
    params: int | None = None
    etag: str | None = None
    # Which published form `sha256`/`size`/`url` describe.
    variant: contract.Variant = "fp32"
    # Per channel c: x = (value · value_scale − mean[c]) / std[c] (None from older servers).
    preprocessing: contract.Preprocessing | None = None
    # The fp32 pruned model when `variant` is another form (int8): fetched only by a device
    # asked to time it too (`--also-fp32`), so the report shows what quantization bought.
    fp32_url: str | None = None
    fp32_sha256: str | None = None
    fp32_size: int | None = None

    @classmethod
    def from_json(cls, data: Any, etag: str | None = None, variant: str = "fp32") -> Manifest:
        """`variant`: "fp32", "int8", or "auto" (int8 when the server published one, unless
        its `speed_over_fp32` says it ran slower than fp32). A variant the server does not
        offer falls back to fp32."""
        if not isinstance(data, Mapping):
            raise ServerError("malformed manifest: not a JSON object")
        try:
            body = _choose_variant(cast(_Read, data), variant)
            shape = body.get("input_shape")
            classes = body.get("classes")
            baseline_sha = body.get("baseline_sha256")
            preprocessing = body.get("preprocessing")
            return cls(
                deployment=str(body["deployment"]),
                version=int(body["version"]),
                sha256=_sha(body["sha256"]),
                size=_size(body["size"]),
                url=str(body["url"]),
                job_id=_opt_str(body.get("job_id")),
                baseline_url=_opt_str(body.get("baseline_url")),
                baseline_sha256=str(baseline_sha).lower() if baseline_sha else None,
                input_shape=tuple(int(d) for d in shape) if shape else None,
                classes=tuple(str(c) for c in classes) if classes else None,
                flops=_opt_int(body.get("flops")),
                params=_opt_int(body.get("params")),
                etag=etag if etag is not None else _opt_str(body.get("etag")),
                variant=_variant(body.get("variant")),
                preprocessing=(
                    cast(contract.Preprocessing, dict(preprocessing))
                    if isinstance(preprocessing, Mapping)
                    else None
                ),
                fp32_url=_opt_str(body.get("fp32_url")),
                fp32_sha256=_opt_sha(body.get("fp32_sha256")),
                fp32_size=_opt_int(body.get("fp32_size")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ServerError(f"malformed manifest: {exc!r}") from exc

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_shape"] = list(self.input_shape) if self.input_shape else None
        data["classes"] = list(self.classes) if self.classes else None
        return data


def _choose_variant(data: _Read, wanted: str) -> _Read:
    """The manifest with sha256/size/url taken from the chosen entry of `variants`."""
    if wanted not in VARIANT_CHOICES:
        choices = ", ".join(VARIANT_CHOICES)
        raise ValueError(f"variant must be one of {choices}, got {wanted!r}")
    offered = {str(v.get("name")): v for v in data.get("variants") or [] if isinstance(v, Mapping)}
    if not offered:  # an older server, or a manifest saved by this client: as it is
        return {**data, "variant": data.get("variant") or "fp32"}
    name = _auto_variant(offered) if wanted == "auto" else wanted
    if name not in offered:
        if name == "int8":
            log.info("the server offers no int8 model for this version: using fp32")
        return {**data, "variant": "fp32"}
    chosen = offered[name]
    picked: _Read = {
        **data,
        "sha256": chosen["sha256"],
        "size": chosen["size"],
        "url": chosen["url"],
        "variant": name,
    }
    if name != "fp32":
        # The top-level sha256/size/url are the fp32 model's (the server's contract); its own
        # entry in `variants`, when listed, says the same.
        fp32 = offered.get("fp32")
        picked["fp32_url"] = fp32["url"] if fp32 else data["url"]
        picked["fp32_sha256"] = fp32["sha256"] if fp32 else data["sha256"]
        picked["fp32_size"] = fp32["size"] if fp32 else data["size"]
    return picked


def _auto_variant(offered: Mapping[str, Any]) -> str:
    """int8 when offered, unless the worker timed it slower than the fp32 pruned model: on
    small or depthwise layers the int8 kernels can lose (docs/edge-client.md), and a device
    that asked for "auto" wants the faster model. The worker's CPU is not the device's, so
    a device that knows better pins `--variant int8`."""
    int8 = offered.get("int8")
    if int8 is None:
        return "fp32"
    speed = int8.get("speed_over_fp32")
    if isinstance(speed, int | float) and not isinstance(speed, bool) and speed < 1.0:
        log.info("int8 ran at %.2fx fp32's speed on the worker's CPU: auto installs fp32", speed)
        return "fp32"
    return "int8"


def _variant(value: Any) -> contract.Variant:
    name = str(value or "fp32")
    if name not in contract.VARIANTS:
        raise ValueError(f"unknown variant {name!r}")
    return cast(contract.Variant, name)


def _sha(value: Any) -> str:
    sha = str(value).lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ValueError(f"sha256 {sha!r} is not 64 hex digits")
    return sha


def _size(value: Any) -> int:
    size = int(value)
    if size < 0:
        raise ValueError("negative size")
    return size


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _opt_sha(value: Any) -> str | None:
    return None if value is None else _sha(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)
