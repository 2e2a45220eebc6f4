"""`edge-client predict`: classify samples with the installed model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..errors import NotSetUp
from ..predict import Preprocessing
from .options import JsonOpt, StateDirOpt, err, exit_on_error, out, state_folder


def predict(
    files: Annotated[
        list[Path],
        typer.Argument(
            exists=True,
            dir_okay=False,
            metavar="FILE...",
            help="Images (PNG, JPEG, ...; needs the edge-images extra), or .npy/.npz arrays of "
            "raw samples: (N,C,H,W), (N,H,W,C) or (N,H,W), in the source's own scale (e.g. "
            "0..255 pixels). The manifest's preprocessing (or the model's metadata) is applied.",
        ),
    ],
    model: Annotated[
        Path | None, typer.Option(help="ONNX model (default: the installed current model).")
    ] = None,
    top: Annotated[int, typer.Option(min=1, metavar="N", help="Classes listed per sample.")] = 3,
    as_json: JsonOpt = False,
    state_dir: StateDirOpt = None,
) -> None:
    """Classify images or raw samples with the installed model, preprocessed as it says."""
    from ..predict import classify, open_model
    from ..samples import read_samples

    with exit_on_error():
        model, prep = _model_and_preprocessing(model, state_dir)
        session = open_model(model)
        prep = prep or Preprocessing.from_model(session)
        samples = read_samples(files, prep)
        results = classify(session, samples.x, prep.classes, top)
    for note in samples.notes:  # on stderr: --json output stays parseable
        err.print(f"note: {escape(note)}", highlight=False, soft_wrap=True)
    if as_json:
        out.print_json(data=[
            {"source": name, "label": r.label, "index": r.index, "probability": r.probability,
             "top": r.top}
            for name, r in zip(samples.names, results, strict=True)
        ])  # fmt: skip
        return
    for name, r in zip(samples.names, results, strict=True):
        ranked = ", ".join(f"{label} {p:.2f}" for label, p in r.top)
        out.print(f"{name}: {r.label} ({r.probability:.2f})  [{ranked}]", highlight=False)


def _model_and_preprocessing(
    model: Path | None, state_dir: Path | None
) -> tuple[Path, Preprocessing | None]:
    """The model to run and the installed manifest's preprocessing (None for --model, or a
    manifest without one: the model's own metadata is used then)."""
    if model is not None:
        return model, None
    current = state_folder(state_dir).current()
    if current is None:
        raise NotSetUp("no model installed yet: run `edge-client run --once` first")
    return current.model_path, Preprocessing.from_manifest(current.manifest)
