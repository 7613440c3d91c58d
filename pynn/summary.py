"""``Sequential.summary()``: the model as a table, in Keras's layout."""
import numpy as np

_WIDTHS = (29, 26, 12)


def _row(cells):
    # a cell wider than its column keeps one space before the next
    return "".join(str(c).ljust(w) if len(str(c)) < w else f"{c} "
                   for c, w in zip(cells, _WIDTHS)).rstrip()


def _bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024


def _snake(type_name):
    # Keras's default names: dense, dropout, batch_normalization, ...
    return "".join("_" + c.lower() if c.isupper() and i else c.lower()
                   for i, c in enumerate(type_name))


def layer_names(model):
    """Each layer's name, or Keras-style defaults: dense, dense_1, dropout, ..."""
    names, taken = [], {layer.name for layer in model.layers if layer.name}
    counters = {}
    for layer in model.layers:
        if layer.name:
            names.append(layer.name)
            continue
        base = _snake(layer.type_name)
        while True:
            counter = counters.get(base, 0)
            name = base if counter == 0 else f"{base}_{counter}"
            counters[base] = counter + 1
            if name not in taken:
                break
        taken.add(name)
        names.append(name)
    return names


def summary_table(model):
    """The summary as a string (see Sequential.summary)."""
    line = "_" * sum(_WIDTHS)
    rows = ['Model: "sequential"', line,
            _row(("Layer (type)", "Output Shape", "Param #")), "=" * sum(_WIDTHS)]
    n_in = model.input_dim
    total = trainable = 0
    for i, (layer, name) in enumerate(zip(model.layers, layer_names(model))):
        n_out = layer.output_width(n_in) if n_in is not None else getattr(layer, "units")
        if n_in is None:
            count = "0 (unbuilt)"
        else:
            count = layer.count_params(n_in)
            total += count
            # none while the model itself is frozen, whatever the layers' flags
            trainable += layer.count_trainable(n_in) if model.trainable else 0
            count = f"{count:,}"
        rows.append(_row((f"{name} ({layer.type_name})",
                          f"(None, {'?' if n_out is None else n_out})", count)))
        rows.append(line if i == len(model.layers) - 1 else "")
        n_in = n_out
    if not model.layers:
        rows.append(line)
    rows[-1] = "=" * sum(_WIDTHS) if model.layers else rows[-1]
    if model.layers and model.input_dim is None:
        rows.append("Total params: unknown until the model is built "
                    "(the first layer's input size is not known yet)")
    else:
        itemsize = np.dtype(model.dtype).itemsize
        fixed = total - trainable
        rows += [f"Total params: {total:,} ({_bytes(total * itemsize)})",
                 f"Trainable params: {trainable:,} ({_bytes(trainable * itemsize)})",
                 f"Non-trainable params: {fixed:,} ({_bytes(fixed * itemsize)})"]
    rows.append(line)
    return "\n".join(rows)
