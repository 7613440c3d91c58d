"""Keras 3's names over pynn's objects: a Keras script for dense networks
runs with its import changed to ``from pynn import keras``.

    from pynn import keras
    from pynn.keras import layers

    model = keras.Sequential([keras.Input(shape=(30,)),
                              layers.Dense(16, activation="relu"),
                              layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=20, batch_size=32, validation_split=0.2)
    loss, accuracy = model.evaluate(x_test, y_test)

In this namespace Keras's layout is the layout: kernels are (inputs, units).
Whatever pynn cannot do yet (other layer kinds, activity regularizers,
constraints, the functional API, ...) raises NotImplementedError
naming the missing piece; attributes pynn does not know are refused.
"""
from . import (activations, callbacks, initializers, layers, losses, metrics, models,
               optimizers, regularizers, utils)
from .layers import Input
from .models import Model, Sequential

__all__ = ["Input", "Model", "Sequential", "activations", "callbacks", "initializers",
           "layers", "losses", "metrics", "models", "optimizers", "regularizers", "utils"]
