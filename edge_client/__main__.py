"""`python -m edge_client` runs the same CLI as the `edge-client` console script."""

from edge_client.cli import app

app(prog_name="edge-client")
