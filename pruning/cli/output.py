"""What `edgeprune compress` prints when the run is done: a few lines for a person, or with
--json one object for a script, in the vocabulary of the service's job summary."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from edgeprune.json_output import echo_json
from pruning.report import FLOPS_NOTE

if TYPE_CHECKING:
    from pruning.pipeline import CompressResult


def result_document(result: CompressResult, out: Path) -> dict[str, Any]:
    """The job summary's keys (`pruning.summary`), the output folder and every artifact."""
    from pruning.summary import summarize

    return {
        **summarize(result.report),
        "out_dir": str(out),
        "artifacts": {name: str(path) for name, path in sorted(result.artifacts.items())},
    }


def show_result(result: CompressResult, out: Path, *, as_json: bool) -> None:
    if as_json:
        echo_json(result_document(result, out))
        return
    report = result.report
    achieved, base, pruned = report["achieved"], report["baseline"], report["pruned"]
    typer.echo(
        f"FLOPs (MACs) -{achieved['flops']:.1%}  params -{achieved['params']:.1%}  "
        f"accuracy {base['accuracy']:.4f} -> {pruned['accuracy']:.4f}"
    )
    int8 = report.get("int8")
    if int8 is not None:
        typer.echo(
            f"INT8 accuracy {int8['accuracy']:.4f} (fp32 {int8['fp32_accuracy']:.4f}), "
            f"{int8['speed']['int8_over_fp32']:.2f}x fp32's speed on this CPU" + _plan(int8)
            if int8["published"]
            else f"INT8 not written: {int8['reason']}"
        )
    for note in report.get("notes", []):
        if note != FLOPS_NOTE:  # the one every report carries
            typer.echo(f"note: {note}")
    typer.echo(f"artifacts in {out}: {', '.join(sorted(result.artifacts))}")


def _plan(int8: dict[str, Any]) -> str:
    """Which INT8 plan was published and among how many (reports before plans: nothing)."""
    plan, made = int8.get("plan"), len(int8.get("candidates") or [])
    if not plan:
        return ""
    return f" (plan {plan}" + (f", the faster of {made})" if made > 1 else ")")
