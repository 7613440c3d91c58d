"""The command line: ``python -m pynn demo``."""
import argparse
import sys

import numpy as np


def demo(args):
    """Train a small network on y = sin(x) and print the loss as it falls."""
    import pynn

    x = np.linspace(-np.pi, np.pi, 1024).reshape(-1, 1)
    y = np.sin(x)
    net = pynn.Sequential([
        pynn.Dense(32, activation="tanh", input_dim=1),
        pynn.Dense(32, activation="tanh"),
        pynn.Dense(1),
    ], seed=args.seed)
    net.compile(loss="mse",
                optimizer=pynn.SGD(learning_rate=0.05, momentum=0.9, nesterov=True))
    print(f"pynn {pynn.__version__} demo: a 1-32-32-1 tanh network learns y = sin(x) "
          f"on [-pi, pi] (1024 samples, batch 32)")
    print(f"initial loss: {net.evaluate(x, y)['loss']:.6f}")
    history = net.fit(x, y, epochs=args.epochs, batch_size=32, verbose=0)
    for epoch, loss in enumerate(history.history["loss"], 1):
        if epoch == 1 or epoch % max(1, args.epochs // 10) == 0:
            print(f"epoch {epoch:4d}  loss {loss:.6f}")
    final = net.evaluate(x, y)["loss"]
    print(f"final loss: {final:.6f}")
    return 0


def info(args):
    """Versions, the BLAS pynn multiplies with and its threads, the build."""
    import platform

    import scipy

    import pynn
    from pynn import _dense, _threads, bench

    print(f"pynn {pynn.__version__}")
    print(f"python {platform.python_version()} ({platform.machine()}, {platform.system()})")
    print(f"numpy {np.__version__}, scipy {scipy.__version__}")
    build = _dense.BUILD
    print(f"build: Cython {build['cython']}, flags {build['cflags']}, "
          f"bounds checks {'on (PYNN_DEBUG)' if build['debug'] else 'off'}")
    print("float types: float32, float64")
    for line in bench.blas_info():
        print(f"BLAS {line}")
    setter = _threads.local_thread_setter()
    print("per-call BLAS thread control: " + (
        f"yes (openblas_set_num_threads_local); one thread below "
        f"{_threads.MIN_PARALLEL_FLOPS:.3g} flops per step" if setter else
        "no (this BLAS decides its threads alone)"))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pynn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="train a small network and print the loss as it falls")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=demo)
    p = sub.add_parser("info", help="versions, BLAS and threads, build flags")
    p.set_defaults(func=info)
    p = sub.add_parser("bench", help="time pynn against the NumPy baseline (and PyTorch)",
                       add_help=False)
    p.set_defaults(func=None)
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        from . import bench
        return bench.main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
