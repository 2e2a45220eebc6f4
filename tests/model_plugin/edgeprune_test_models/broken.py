"""An architecture whose module fails to import, as a half-installed package would."""

raise ImportError("edgeprune_test_models.broken needs a package that is not installed")
