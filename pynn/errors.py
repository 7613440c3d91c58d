"""Exceptions particular to pynn (bad input raises ValueError / TypeError)."""


class DivergenceError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient.

    The step that produced it was not applied: the model keeps the weights of
    the last step whose loss and gradients were finite.
    """


class SolverDivergenceError(DivergenceError, ValueError):
    """The scikit-learn estimators' divergence: a DivergenceError that is also
    the ValueError scikit-learn's MLPs raise for non-finite weights, so code
    written for either catches it."""
