"""Diabetes progression (scikit-learn's regression set), 10-32-16-1, written
as a Keras 3 user would.  Under Keras the import reads ``import keras``."""
import csv
import os
import tempfile

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from pynn import keras
from pynn.keras import layers

keras.utils.set_random_seed(7)

x, y = load_diabetes(return_X_y=True)
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=42)
scaler = StandardScaler().fit(x_train)
x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
y_mean, y_std = y_train.mean(), y_train.std()
t_train, t_test = (y_train - y_mean) / y_std, (y_test - y_mean) / y_std

model = keras.Sequential()
model.add(keras.Input(shape=(x_train.shape[1],)))
model.add(layers.Dense(32, activation="relu", kernel_initializer="he_normal"))
model.add(layers.Dense(16, activation="relu", kernel_initializer="he_normal"))
model.add(layers.Dense(1))
model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.005, momentum=0.9),
              loss="mse", metrics=["mae"])

log_path = os.path.join(tempfile.mkdtemp(), "training.csv")
history = model.fit(
    x_train, t_train, epochs=40, batch_size=32, validation_data=(x_test, t_test),
    verbose=0,
    callbacks=[keras.callbacks.LearningRateScheduler(
                   lambda epoch, lr: lr if epoch < 10 else lr * 0.95),
               keras.callbacks.CSVLogger(log_path)])
test_mse, test_mae = model.evaluate(x_test, t_test, verbose=0)
prediction = model.predict(x_test, verbose=0).ravel() * y_std + y_mean
test_r2 = r2_score(y_test, prediction)
with open(log_path, newline="") as f:
    logged_epochs = len(list(csv.DictReader(f)))

print(f"diabetes: test mse {test_mse:.4f} (standardised target), test mae "
      f"{test_mae * y_std:.2f}, R2 {test_r2:.4f}, {logged_epochs} epochs logged")
