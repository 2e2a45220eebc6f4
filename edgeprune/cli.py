"""Entry point of the `edgeprune` console script."""

from __future__ import annotations

import typer

from pruning import cli as pruning_cli
from service import cli as service_cli
from worker import cli as worker_cli

app = typer.Typer(
    name="edgeprune",
    help="Compress CNNs for edge devices: structure learning + weight learning, published as ONNX.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
pruning_cli.register(app)
service_cli.register(app)
worker_cli.register(app)
