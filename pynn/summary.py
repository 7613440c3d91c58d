"""``Sequential.summary()``: the model as a table, in Keras's layout."""
import numpy as np

_WIDTHS = (29, 26, 12)


def _row(cells):
    return "".join(str(c).ljust(w) for c, w in zip(cells, _WIDTHS)).rstrip()


def _bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024


def layer_names(model):
    """Each layer's name, or Keras-style defaults: dense, dense_1, ..."""
    names, taken = [], {layer.name for layer in model.layers if layer.name}
    counter = 0
    for layer in model.layers:
        if layer.name:
            names.append(layer.name)
            continue
        while True:
            name = "dense" if counter == 0 else f"dense_{counter}"
            counter += 1
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
    total = 0
    for i, (layer, name) in enumerate(zip(model.layers, layer_names(model))):
        if n_in is None:
            count = "0 (unbuilt)"
        else:
            count = layer.units * n_in + layer.units
            total += count
            count = f"{count:,}"
        rows.append(_row((f"{name} (Dense)", f"(None, {layer.units})", count)))
        rows.append(line if i == len(model.layers) - 1 else "")
        n_in = layer.units
    if not model.layers:
        rows.append(line)
    rows[-1] = "=" * sum(_WIDTHS) if model.layers else rows[-1]
    if model.layers and model.input_dim is None:
        rows.append("Total params: unknown until the model is built "
                    "(the first layer's input size is not known yet)")
    else:
        itemsize = np.dtype(model.dtype).itemsize
        trainable = model.count_trainable_params() if model.built else total
        frozen = total - trainable
        rows += [f"Total params: {total:,} ({_bytes(total * itemsize)})",
                 f"Trainable params: {trainable:,} ({_bytes(trainable * itemsize)})",
                 f"Non-trainable params: {frozen:,} ({_bytes(frozen * itemsize)})"]
    rows.append(line)
    return "\n".join(rows)
