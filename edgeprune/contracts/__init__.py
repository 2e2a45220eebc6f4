"""The vocabulary all of EdgePrune's rooms share, each shape defined once (DESIGN.md, 'Shared
shapes'): job states and phases (jobs), artifact names (artifacts), the limits of a
compression request (limits), the report and the job summary (report), the manifest and the
device report (edge), the dataset upload rules the API and the engine both apply
(dataset_rules, a package: formats and limits, archive members, ImageFolder trees, images,
.npz arrays, classes and the split), exit codes, the zoo's names.

Standard library only, so every room may import it, the torch-free edge client included;
import-linter keeps it free of the rooms and of the composition root beside it. The service
validates with pydantic models of its own, and tests/contracts checks them against these.
"""
