"""Rebuild pynn objects from ``{"class_name": ..., "config": {...}}``.

Used when loading a saved model: the class is looked up by name among a
fixed set of pynn classes, and called with the config as keyword
arguments.  Nothing else is ever imported, evaluated or unpickled.
"""


def from_name(name, classes, what):
    """A default instance of the class registered as ``name`` (any case).

    Raises
    ------
    ValueError
        On an unknown name; the message lists the valid ones.
    """
    key = name.lower()
    if key not in classes:
        raise ValueError(f"unknown {what} {name!r}; valid names: {sorted(classes)}")
    return classes[key]()


def from_config(config, classes, what):
    """An instance of ``classes[config["class_name"]](**config["config"])``.

    Parameters
    ----------
    config : dict with exactly the keys "class_name" (str) and "config" (dict)
    classes : dict mapping class names to classes
    what : str
        What is being rebuilt, for error messages ("loss", "optimizer", ...).

    Raises
    ------
    ValueError
        On an unknown class name or a config its class refuses.
    """
    if not isinstance(config, dict) or set(config) != {"class_name", "config"} \
            or not isinstance(config["config"], dict):
        raise ValueError(f"a {what} config must be a dict "
                         f"{{'class_name': str, 'config': dict}}, got {config!r:.200}")
    name = config["class_name"]
    if not isinstance(name, str) or name not in classes:
        raise ValueError(f"unknown {what} {name!r}; known: {sorted(classes)}")
    try:
        return classes[name](**config["config"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid {what} config for {name}: {exc}") from None


# Model classes by the format name their files carry: the public model
# registers itself when it is defined, so that the loader (pynn.io, which
# sits below it) can rebuild one without importing it.
_MODELS = {}


def register_model(format_name, cls):
    """Make ``cls`` the class that files of ``format_name`` load into."""
    _MODELS[format_name] = cls


def model_class(format_name):
    """The class registered for ``format_name`` (LookupError if none is)."""
    try:
        return _MODELS[format_name]
    except KeyError:
        raise LookupError(f"no model class is registered for {format_name!r}") from None
