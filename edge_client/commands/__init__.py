"""The edge-client commands, one module per concern; edge_client.cli puts them together."""
