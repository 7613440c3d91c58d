"""Run the Keras-style scripts beside this file on real Keras 3, their
imports changed back (``from pynn import keras`` -> ``import keras``), and
time each.  Needs keras and a backend in the environment, for instance::

    KERAS_BACKEND=torch python tests/keras_scripts/run_under_keras.py

pynn never depends on keras: this is a comparison, not a test.
"""
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).parent
SCRIPTS = ["digits.py", "diabetes.py", "breast_cancer.py"]


def as_keras(source):
    return (source.replace("from pynn import keras", "import keras")
                  .replace("from pynn.keras import", "from keras import"))


def main(names):
    import keras
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}")
    for name in names or SCRIPTS:
        source = as_keras((HERE / name).read_text())
        start = time.perf_counter()
        exec(compile(source, name, "exec"), {"__name__": "__main__"})
        print(f"  ({time.perf_counter() - start:.2f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
