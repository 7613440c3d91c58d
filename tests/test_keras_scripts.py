"""Keras 3 scripts (tests/keras_scripts/) run through pynn.keras, their
import the only change; each result is checked against NumPy/scikit-learn."""
import math
import pathlib
import runpy

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.metrics import log_loss, roc_auc_score  # noqa: E402

SCRIPTS = pathlib.Path(__file__).parent / "keras_scripts"


def run(name):
    return runpy.run_path(str(SCRIPTS / name), run_name="__main__")


def test_the_scripts_differ_from_keras_only_by_the_import():
    as_keras = runpy.run_path(str(SCRIPTS / "run_under_keras.py"))["as_keras"]
    for name in ("digits.py", "diabetes.py", "breast_cancer.py"):
        source = as_keras((SCRIPTS / name).read_text())
        assert "pynn" not in source.split('"""', 2)[2]      # past the docstring


def test_digits(capsys):
    g = run("digits.py")
    assert g["test_accuracy"] > 0.93
    assert g["test_accuracy"] == np.mean(g["predicted"] == g["y_test"])
    probabilities = g["model"].predict(g["x_test"], verbose=0)
    assert g["test_loss"] == pytest.approx(log_loss(g["y_test"], probabilities,
                                                    labels=range(10)), rel=1e-4)
    assert np.array_equal(g["predicted"], g["reloaded_predicted"])
    assert "digits:" in capsys.readouterr().out


def test_diabetes():
    g = run("diabetes.py")
    standardised = (g["prediction"] - g["y_mean"]) / g["y_std"]
    assert g["test_mse"] == pytest.approx(np.mean((standardised - g["t_test"]) ** 2), rel=1e-4)
    assert g["test_mae"] == pytest.approx(np.mean(np.abs(standardised - g["t_test"])),
                                          rel=1e-4)
    assert g["test_r2"] > 0.3
    assert g["logged_epochs"] == 40
    rates = g["history"].history["learning_rate"]
    expected = [0.005 * 0.95 ** max(0, e - 9) for e in range(40)]
    np.testing.assert_allclose(rates, expected, rtol=1e-12)


def test_breast_cancer():
    g = run("breast_cancer.py")
    y_test, p = g["y_test"], g["probabilities"].ravel()
    assert g["scores"]["accuracy"] > 0.93
    assert g["scores"]["accuracy"] == pytest.approx(np.mean((p > 0.5) == y_test))
    assert float(g["auc"].result()) == pytest.approx(roc_auc_score(y_test, p), abs=5e-3)
    assert g["kernel"].shape == (30, 16)
    np.testing.assert_array_equal(g["kernel"], g["model"].pynn_model.layers[0].W.T)
    assert g["zeroed_loss"] == pytest.approx(math.log(2), rel=1e-6)
    assert g["restored"]["loss"] == g["scores"]["loss"]
