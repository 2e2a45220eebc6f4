"""The one error every dataset rule raises."""


class DatasetRuleError(ValueError):
    """The dataset breaks one of the rules (a one-line reason naming the part)."""
