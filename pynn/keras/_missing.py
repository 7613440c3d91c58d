"""Keras names that pynn does not have yet: each raises a clear error."""

_CORE = ("pynn's compiled core runs the whole network in one compiled step, and "
         "that step knows the layers Dense, Dropout, BatchNormalization and "
         "LayerNormalization, the activations of pynn.activations.names(), the losses "
         "of pynn.losses.names(), and the optimizers SGD, Adam, RMSprop, AdamW, Nadam "
         "and Adagrad")


class Missing:
    """Stands for a Keras class or function pynn lacks: calling it raises
    NotImplementedError naming what is missing, and why."""

    def __init__(self, qualname, why=_CORE):
        self.qualname = qualname
        self.why = why

    def __call__(self, *args, **kwargs):
        raise NotImplementedError(f"{self.qualname} is not in pynn yet: {self.why}")

    def __repr__(self):
        return f"<not in pynn: {self.qualname}>"


def refuse(what, why):
    """Raise NotImplementedError for a setting pynn cannot honour."""
    raise NotImplementedError(f"{what} is not supported by pynn yet: {why}")


def module_getattr(module_name, missing_names, why=_CORE):
    """A module ``__getattr__``: Keras names pynn lacks become Missing
    stand-ins (an error when called); any other name is an AttributeError."""
    def __getattr__(name):
        if name in missing_names:
            return Missing(f"{module_name}.{name}", why)
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
    return __getattr__
