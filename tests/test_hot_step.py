"""train_on_batch's and Model.step's hot path (``pynn._dense.HotStep``).

After a step whose checks passed, the model keeps a HotStep that makes
the same checks in C against what that step saw.  These tests check that
it is taken, that it gives the checked path's bits, that every change
between two steps sends the next one back through the checked path (a
stale HotStep would train with the old settings, variables or optimizer,
and the bits would differ), and that what it refuses is reported as the
checked path reports it, with nothing changed.
"""
import threading

import numpy as np
import pytest

import pynn
from conftest import make_model
from pynn import _dense, layers

rng = np.random.default_rng(5)
X = rng.standard_normal((12, 6))
Y = rng.standard_normal((12, 3))


def pair(dtype="float64", optimizer=lambda: pynn.SGD(0.05, momentum=0.9, nesterov=True)):
    """Two models made alike: the first trains through train_on_batch's hot
    path, the second through the checked path (checked_steps)."""
    make = lambda: make_model((5, "relu"), (3, None), input_dim=6, dtype=dtype, seed=3,
                              optimizer=optimizer())
    return make(), make()


def batches(dtype, k):
    rows = slice(4 * (k % 3), 4 * (k % 3) + 4)
    return X[rows].astype(dtype), Y[rows].astype(dtype)


def hot_steps(model, dtype, steps, start=0):
    """Steps on the hot path; returns their losses and asserts that every
    step after the first two ran on the HotStep the one before left."""
    losses = []
    for k in range(start, start + steps):
        before = model._hot
        losses.append(model.train_on_batch(*batches(dtype, k)))
        if k - start >= 2:
            assert model._hot is before is not None, "the hot path was not taken"
    return losses


def checked_step(model, x, y):
    """train_on_batch on the checked path: the HotStep the step before left
    dropped first (return_dict=True alone would still find it in step)."""
    model._hot = None
    return model.train_on_batch(x, y, return_dict=True)["loss"]


def checked_steps(model, dtype, steps, start=0):
    return [checked_step(model, *batches(dtype, k)) for k in range(start, start + steps)]


def interface_steps(model, dtype, steps, start=0):
    """Steps through Model.step, each applied; asserts, as hot_steps, that
    every step after the first two ran on the HotStep the one before left."""
    losses = []
    for k in range(start, start + steps):
        before = model._hot
        loss, applied = model.step(*batches(dtype, k))
        assert applied is True and isinstance(loss, float)
        losses.append(loss)
        if k - start >= 2:
            assert model._hot is before is not None, "the hot path was not taken"
    return losses


def assert_same_models(a, b):
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.optimizer.state, b.optimizer.state)
    assert a.optimizer.iterations == b.optimizer.iterations


def assert_the_next_steps_agree(hot, checked, start, steps):
    """The next steps on the hot path and on the checked path: the same
    losses, then the same parameters, state and step count."""
    assert hot_steps(hot, "float64", steps, start) == checked_steps(checked, "float64", steps,
                                                                    start)
    assert_same_models(hot, checked)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("optimizer", [
    lambda: pynn.SGD(0.05, momentum=0.9, nesterov=True),
    lambda: pynn.Adam(0.01),
    lambda: pynn.SGD(pynn.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)),
], ids=["sgd-nesterov", "adam", "sgd-schedule"])
def test_the_hot_path_is_taken_and_gives_the_checked_paths_bits(dtype, optimizer):
    hot, checked = pair(dtype, optimizer)
    assert hot_steps(hot, dtype, 9) == checked_steps(checked, dtype, 9)
    assert isinstance(hot._hot, _dense.HotStep)
    assert_same_models(hot, checked)


def _lr(model):
    model.optimizer.learning_rate = 0.2


def _momentum_off(model):
    model.optimizer.momentum = 0.0


def _clip(model):
    model.optimizer.clipvalue = 1e-3


def _freeze(model):
    model.layers[0].trainable = False


def _regularize(model):
    model.layers[1].kernel_regularizer = pynn.regularizers.L2(0.5)


def _new_optimizer(model):
    model.optimizer = pynn.SGD(0.3)


def _recompile(model):
    model.compile(pynn.Adam(0.02), "mse")


def _count(model):
    model.optimizer.iterations = 0


def _weights(model):
    model.set_weights([2 * w for w in model.get_weights()])


def _state_array(model):
    model.optimizer.state = np.full_like(model.optimizer.state, 0.5)


@pytest.mark.parametrize("change", [_lr, _momentum_off, _clip, _freeze, _regularize,
                                    _new_optimizer, _recompile, _count, _weights,
                                    _state_array])
def test_a_change_between_steps_reaches_the_next_step(change):
    hot, checked = pair(optimizer=lambda: pynn.Adam(0.01) if change is _count
                        else pynn.SGD(0.05, momentum=0.9, nesterov=True))
    hot_steps(hot, "float64", 4)
    checked_steps(checked, "float64", 4)
    assert hot._hot is not None
    change(hot)
    change(checked)
    assert_the_next_steps_agree(hot, checked, 4, 5)


def test_metrics_compiled_after_the_hot_path_get_their_scores():
    model = make_model((5, "relu"), (3, None), input_dim=6, seed=3)
    hot_steps(model, "float64", 3)
    model.compile(pynn.SGD(0.05), "mse", metrics=["mae"])
    x, y = batches("float64", 0)
    scores = model.train_on_batch(x, y)
    assert isinstance(scores, list) and len(scores) == 2
    model.metrics.clear()           # changed in place: no attribute set
    assert isinstance(model.train_on_batch(x, y), float)
    hot_steps(model, "float64", 3)
    model.metrics.append(pynn.metrics.get("mae", model.loss))
    scores = model.train_on_batch(x, y)
    assert isinstance(scores, list) and len(scores) == 2


def test_arrays_the_network_does_not_take_as_they_are_go_the_checked_way():
    hot, checked = pair()
    hot_steps(hot, "float64", 3)
    checked_steps(checked, "float64", 3)
    x, y = batches("float64", 3)
    # a list, a float32 array, a Fortran-ordered array: converted, then stepped
    for xs in (x.tolist(), x.astype(np.float32), np.asfortranarray(x)):
        assert hot.train_on_batch(xs, y) == checked_step(checked, xs, y)
    assert_same_models(hot, checked)


def test_a_refused_hot_step_is_reported_and_changes_nothing():
    model = make_model((5, "relu"), (3, None), input_dim=6, seed=3,
                       optimizer=pynn.SGD(0.05, momentum=0.9))
    hot_steps(model, "float64", 3)
    params, state = model.params.copy(), model.optimizer.state.copy()
    count = model.optimizer.iterations
    x, y = batches("float64", 0)
    bad = x.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="x"):
        model.train_on_batch(bad, y)
    bad = y.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="y"):
        model.train_on_batch(x, bad)
    hot_steps(model, "float64", 0)          # the hot path is made again ...
    model.train_on_batch(x, y)
    params, state = model.params.copy(), model.optimizer.state.copy()
    count = model.optimizer.iterations
    assert model._hot is not None
    with pytest.raises(pynn.DivergenceError):
        model.train_on_batch(x * 1e300, y)  # ... and refuses an overflowing step
    np.testing.assert_array_equal(model.params, params)
    np.testing.assert_array_equal(model.optimizer.state, state)
    assert model.optimizer.iterations == count


def test_the_hot_path_does_not_step_while_another_thread_holds_the_lock():
    model = make_model((5, "relu"), (3, None), input_dim=6, seed=3)
    hot_steps(model, "float64", 3)
    hot = model._hot
    x, y = batches("float64", 0)
    held, release, done = threading.Event(), threading.Event(), threading.Event()

    def holder():
        with model.lock:
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(10)
    params = model.params.copy()
    assert hot(x, y) is None                # refused without waiting, nothing run
    np.testing.assert_array_equal(model.params, params)
    stepper = threading.Thread(target=lambda: (model.train_on_batch(x, y), done.set()))
    stepper.start()
    assert not done.wait(0.2)               # train_on_batch waits for the lock ...
    np.testing.assert_array_equal(model.params, params)
    release.set()
    thread.join(10)
    stepper.join(10)
    assert done.is_set()                    # ... and steps once it is free
    assert not np.array_equal(model.params, params)


def test_a_hot_step_is_refused_for_a_model_that_dropped_it():
    model = make_model((5, "relu"), (3, None), input_dim=6, seed=3)
    hot_steps(model, "float64", 3)
    hot = model._hot
    model.stop_training = False             # any attribute set drops it
    assert model._hot is None
    params = model.params.copy()
    assert hot(*batches("float64", 0)) is None
    np.testing.assert_array_equal(model.params, params)


def test_hot_step_checks_its_arguments():
    model = make_model((5, "relu"), (3, None), input_dim=6, seed=3)
    hot_steps(model, "float64", 2)
    opt = model.optimizer
    seen = layers.settings_revision()
    with pytest.raises(ValueError, match="counter"):
        _dense.HotStep(model.engine, model, opt, model.lock, [0, 1], seen, opt.state,
                       opt.revision, False)
    with pytest.raises(TypeError):
        _dense.HotStep(None, model, opt, model.lock, layers.settings_counter(), seen,
                       opt.state, opt.revision, False)


def _during_the_step(model, change):
    """Make ``change`` happen while the model's next checked step runs, after
    the network was handed the settings (as another thread's assignment
    would land): the HotStep made after that step must not take it for
    handed."""
    checked_step = type(model)._compiled_step

    def step_then_change(x, y, update, sample_weight):
        done = checked_step(model, x, y, update, sample_weight)
        change(model)
        return done

    model._compiled_step = step_then_change     # (drops the HotStep: the next call is checked)


@pytest.mark.parametrize("change", [_lr, _momentum_off, _freeze, _regularize, _state_array])
def test_a_change_made_during_a_checked_step_reaches_the_next_one(change):
    hot, checked = pair()
    hot_steps(hot, "float64", 3)
    checked_steps(checked, "float64", 3)
    _during_the_step(hot, change)
    hot.train_on_batch(*batches("float64", 3))  # checked, then changed, then a HotStep made
    del hot._compiled_step
    checked_step(checked, *batches("float64", 3))
    change(checked)
    assert_the_next_steps_agree(hot, checked, 4, 4)


def test_a_model_trained_on_the_hot_path_is_freed_with_its_last_reference():
    import gc
    import weakref
    model = make_model((5, "relu"), (3, None), input_dim=6, seed=3)
    hot_steps(model, "float64", 4)
    assert model._hot is not None
    gone = weakref.ref(model)
    gc.disable()
    try:
        del model
        assert gone() is None       # no cycle through the HotStep
    finally:
        gc.enable()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_step_interface_takes_the_hot_path_with_the_checked_paths_bits(dtype):
    hot, checked = pair(dtype)
    assert interface_steps(hot, dtype, 9) == checked_steps(checked, dtype, 9)
    assert isinstance(hot._hot, _dense.HotStep)
    assert_same_models(hot, checked)
    # and the two interfaces share it
    assert hot_steps(hot, dtype, 3, 9) == checked_steps(checked, dtype, 3, 9)
    assert_same_models(hot, checked)


def test_a_step_without_update_or_with_weights_goes_the_checked_way():
    hot, checked = pair()
    interface_steps(hot, "float64", 3)
    checked_steps(checked, "float64", 3)
    x, y = batches("float64", 3)
    kept = hot._hot
    params, state = hot.params.copy(), hot.optimizer.state.copy()
    loss, applied = hot.step(x, y, update=False)
    checked._hot = None
    assert (loss, applied) == checked.step(x, y, update=False)
    np.testing.assert_array_equal(hot.params, params)
    np.testing.assert_array_equal(hot.optimizer.state, state)
    assert hot.optimizer.iterations == checked.optimizer.iterations == 3
    weights = np.linspace(0.5, 2.0, x.shape[0])
    checked._hot = None
    assert hot.step(x, y, sample_weight=weights) == checked.step(x, y, sample_weight=weights)
    assert hot._hot is kept          # neither call took it nor left another
    assert_same_models(hot, checked)
    assert_the_next_steps_agree(hot, checked, 4, 3)


def test_a_refused_step_on_the_hot_path_reports_not_applied_and_changes_nothing():
    model = make_model((5, "relu"), (3, None), input_dim=6, seed=3,
                       optimizer=pynn.SGD(0.05, momentum=0.9))
    interface_steps(model, "float64", 3)
    assert model._hot is not None
    params, state = model.params.copy(), model.optimizer.state.copy()
    x, y = batches("float64", 0)
    loss, applied = model.step(x * 1e300, y)
    assert applied is False and not np.isfinite(loss)
    assert model._hot is None
    np.testing.assert_array_equal(model.params, params)
    np.testing.assert_array_equal(model.optimizer.state, state)
    assert model.optimizer.iterations == 3
    bad = x.copy()
    bad[0, 0] = np.nan
    interface_steps(model, "float64", 3, 3)
    with pytest.raises(ValueError, match="x"):
        model.step(bad, y)
    assert model.optimizer.iterations == 6
