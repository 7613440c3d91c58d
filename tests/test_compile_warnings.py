"""compile's warnings on a cross-entropy's from_logits that does not match
the last layer's activation, and the silence of every correct setup."""
import warnings

import numpy as np
import pytest

import pynn
from pynn import keras

CROSS_ENTROPIES = [pynn.BinaryCrossentropy, pynn.CategoricalCrossentropy,
                   pynn.SparseCategoricalCrossentropy]


def two_layers(activation, name="out"):
    return pynn.Sequential([pynn.Dense(4, activation="tanh", input_dim=3),
                            pynn.Dense(2, activation=activation, name=name)], seed=0)


@pytest.mark.parametrize("loss_class", CROSS_ENTROPIES)
@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_probabilities_taken_for_logits_warn(loss_class, activation):
    net = two_layers(activation)
    with pytest.warns(UserWarning) as record:
        net.compile("adam", loss_class(from_logits=True))
    assert len(record) == 1
    message = str(record[0].message)
    for part in ("'out'", f"activation {activation!r}", "from_logits=True",
                 "activation='linear'", f"{loss_class.__name__}(from_logits=False)"):
        assert part in message
    assert record[0].filename == __file__          # the user's line, not pynn's


@pytest.mark.parametrize("loss_class", CROSS_ENTROPIES)
@pytest.mark.parametrize("activation", ["linear", "relu", "tanh", "leaky_relu", "elu", "selu",
                                        "gelu", "swish", "softplus"])
def test_unbounded_outputs_taken_for_probabilities_warn(loss_class, activation):
    net = two_layers(activation)
    implied = "sigmoid" if loss_class is pynn.BinaryCrossentropy else "softmax"
    with pytest.warns(UserWarning) as record:
        net.compile("adam", loss_class())
    assert len(record) == 1
    message = str(record[0].message)
    for part in ("'out'", f"activation {activation!r}", "from_logits=False",
                 f"activation={implied!r}", f"{loss_class.__name__}(from_logits=True)"):
        assert part in message


def test_an_unnamed_layer_is_named_by_its_index():
    net = two_layers(None, name=None)
    with pytest.warns(UserWarning, match=r"the last layer \(index 1\) has activation "
                                         r"'linear'.*'categorical_crossentropy'"):
        net.compile("sgd", "categorical_crossentropy")


def test_the_warning_reaches_the_line_of_a_keras_script():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    with pytest.warns(UserWarning, match="from_logits=True") as record:
        model.compile(optimizer="adam",
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert record[0].filename == __file__


def test_loading_a_model_saved_with_the_mistake_warns_again(tmp_path):
    net = two_layers("linear")
    with pytest.warns(UserWarning, match="from_logits=False"):
        net.compile("adam", "binary_crossentropy")
    path = net.save(tmp_path / "m.npz")
    with pytest.warns(UserWarning, match="from_logits=False") as record:
        pynn.load(path)
    assert record[0].filename == __file__


def test_a_warned_setup_still_compiles_and_trains():
    # a mistake, not an error: the model is compiled as asked
    net = two_layers("sigmoid")
    with pytest.warns(UserWarning):
        net.compile(pynn.SGD(0.1), pynn.BinaryCrossentropy(from_logits=True))
    assert net.loss.from_logits and not net.fused
    x = np.random.default_rng(0).standard_normal((8, 3))
    net.fit(x, (x[:, :2] > 0).astype(float), epochs=1, verbose=0)


# (loss, last activation): what compile accepts in silence
CORRECT = [
    (pynn.BinaryCrossentropy(), "sigmoid"),             # fused
    (pynn.BinaryCrossentropy(from_logits=True), "linear"),
    (pynn.BinaryCrossentropy(), "softmax"),             # probabilities all the same
    (pynn.CategoricalCrossentropy(), "softmax"),
    (pynn.CategoricalCrossentropy(from_logits=True), "linear"),
    (pynn.CategoricalCrossentropy(), "sigmoid"),        # probabilities, unnormalised
    (pynn.SparseCategoricalCrossentropy(), "softmax"),
    (pynn.SparseCategoricalCrossentropy(from_logits=True), "linear"),
    ("mse", "linear"),
    ("mse", "sigmoid"),
    ("mse", "softmax"),
]


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("loss, activation", CORRECT)
def test_correct_setups_are_silent(loss, activation):
    net = two_layers(activation)
    net.compile("adam", loss)
    assert net.loss is not None


@pytest.mark.filterwarnings("error")
def test_a_model_compiled_before_it_has_layers_is_silent():
    net = pynn.Sequential()
    net.compile("adam", "categorical_crossentropy")
    assert net.loss is not None


@pytest.mark.filterwarnings("error")
def test_saving_and_loading_a_correct_model_is_silent(tmp_path):
    net = two_layers("softmax")
    net.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    path = net.save(tmp_path / "m.npz")
    back = pynn.load(path)
    assert back.loss.name == "sparse_categorical_crossentropy"


@pytest.mark.filterwarnings("error")
def test_keras_style_logits_setup_is_silent():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3)])
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    assert model.loss.from_logits


@pytest.mark.parametrize("estimator", ["MLPClassifier", "MLPRegressor"])
def test_sklearn_estimators_are_silent(estimator):
    pytest.importorskip("sklearn")
    import pynn.sklearn
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3))
    y = (x[:, 0] > 0).astype(int) if estimator == "MLPClassifier" else x[:, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # two iterations: ConvergenceWarning
        warnings.filterwarnings("error", message="the last layer", category=UserWarning)
        getattr(pynn.sklearn, estimator)(hidden_layer_sizes=(4,), max_iter=2,
                                         random_state=0).fit(x, y)
