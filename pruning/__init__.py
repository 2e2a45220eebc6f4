"""EdgePrune's compression engine: structure learning and weight learning (Qi et al. 2021).

Importing this package is cheap; torch is imported by the submodules that need it.
"""
