"""Breast cancer (scikit-learn's binary set), 30-16-1, written as a Keras 3
user would.  Under Keras the import reads ``import keras``."""
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from pynn import keras
from pynn.keras import layers

keras.utils.set_random_seed(0)

x, y = load_breast_cancer(return_X_y=True)
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, stratify=y,
                                                    random_state=1)
scaler = StandardScaler().fit(x_train)
x_train = scaler.transform(x_train).astype("float32")
x_test = scaler.transform(x_test).astype("float32")

epochs, batch_size = 30, 32
steps = int(np.ceil(len(x_train) * 0.8 / batch_size)) * epochs
schedule = keras.optimizers.schedules.CosineDecay(1e-2, decay_steps=steps, alpha=0.01)

model = keras.Sequential([
    keras.Input(shape=(30,)),
    layers.Dense(16, activation="relu"),
    layers.Dense(1, activation="sigmoid"),
])
model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule),
              loss=keras.losses.BinaryCrossentropy(), metrics=["accuracy"])
model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, validation_split=0.2,
          verbose=0, callbacks=[keras.callbacks.TerminateOnNaN()])
scores = model.evaluate(x_test, y_test, verbose=0, return_dict=True)

probabilities = model.predict(x_test, verbose=0)
auc = keras.metrics.AUC()
auc.update_state(y_test, probabilities)
precision = keras.metrics.Precision()
precision.update_state(y_test, probabilities)
recall = keras.metrics.Recall()
recall.update_state(y_test, probabilities)

# weights in Keras's layout: kernel (inputs, units), then bias
kernel, bias = model.layers[0].get_weights()
weights = model.get_weights()
model.set_weights([np.zeros_like(w) for w in weights])
zeroed_loss, _ = model.evaluate(x_test, y_test, verbose=0)
model.set_weights(weights)
restored = model.evaluate(x_test, y_test, verbose=0, return_dict=True)

print(f"breast cancer: test loss {scores['loss']:.4f}, accuracy {scores['accuracy']:.4f}, "
      f"AUC {float(auc.result()):.4f}, precision {float(precision.result()):.4f}, "
      f"recall {float(recall.result()):.4f}, kernel {kernel.shape}, "
      f"loss with zero weights {zeroed_loss:.4f}, restored {restored['loss']:.4f}")
