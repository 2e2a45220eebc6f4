"""The network as prunable units: the units themselves, torch-pruning's dependency graph,
unit discovery on any CNN, rebuilding a pruned structure, and what a network costs (the
exact FLOPs/parameter model of a masked network, and counts measured on a forward pass)."""
