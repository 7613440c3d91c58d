"""Handwritten digits (scikit-learn's 8x8 set), 64-64-10, written as a
Keras 3 user would.  Under Keras the import reads ``import keras``."""
import os
import tempfile

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from pynn import keras
from pynn.keras import layers

keras.utils.set_random_seed(42)

x, y = load_digits(return_X_y=True)
x = (x / 16.0).astype("float32")
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, stratify=y,
                                                    random_state=0)

model = keras.Sequential([
    keras.Input(shape=(64,)),
    layers.Dense(64, activation="relu"),
    layers.Dense(10, activation="softmax"),
])
model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(x_train, y_train, epochs=40, batch_size=32, validation_split=0.1,
                    verbose=0,
                    callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=5,
                                                             restore_best_weights=True)])
test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
predicted = np.argmax(model.predict(x_test, verbose=0), axis=1)

path = os.path.join(tempfile.mkdtemp(), "digits.keras")
model.save(path)
reloaded = keras.models.load_model(path)
reloaded_predicted = np.argmax(reloaded.predict(x_test, verbose=0), axis=1)

epochs_run = len(history.history["loss"])
print(f"digits: {epochs_run} epochs, test loss {test_loss:.4f}, "
      f"test accuracy {test_accuracy:.4f}, "
      f"reloaded model agrees on {np.mean(predicted == reloaded_predicted):.4f}")
