"""Training callbacks.  ``History`` records what fit reports, epoch by epoch."""


class History:
    """``history`` maps each reported quantity ("loss", ...) to its per-epoch
    values; ``epoch`` lists the epoch indices they belong to."""

    def __init__(self):
        self.history = {}
        self.epoch = []

    def record(self, epoch, logs):
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"
