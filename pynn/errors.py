"""Exceptions particular to pynn (bad input raises ValueError / TypeError)."""


class DivergenceError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient.

    The step that produced it was not applied: the model keeps the weights of
    the last step whose loss and gradients were finite.
    """
