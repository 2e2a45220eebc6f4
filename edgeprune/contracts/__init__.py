"""The vocabulary all of EdgePrune's rooms share: exit codes, job states, the zoo's names.

Standard library only, so every room may import it, the torch-free edge client included;
import-linter keeps it free of the rooms and of the composition root beside it.
"""
