"""The command line: ``python -m pynn demo``."""
import argparse
import sys

import numpy as np


def spirals(n_per_class, n_classes=3, turns=1.25, noise=0.15, seed=0):
    """A generated dataset: interleaved 2-D spiral arms, one per class."""
    rng = np.random.default_rng(seed)
    r = np.linspace(0.1, 1.0, n_per_class)
    xs, ys = [], []
    for k in range(n_classes):
        theta = (2 * np.pi * turns * r + 2 * np.pi * k / n_classes
                 + noise * rng.standard_normal(n_per_class))
        xs.append(np.column_stack([r * np.cos(theta), r * np.sin(theta)]))
        ys.append(np.full(n_per_class, k))
    return np.concatenate(xs), np.concatenate(ys)


def demo(args):
    """Train a classifier on generated spirals; the loss falls, accuracy rises."""
    import pynn

    x, y = spirals(1000)
    net = pynn.Sequential([
        pynn.Dense(64, activation="relu", input_dim=2, kernel_initializer="he_uniform"),
        pynn.Dense(64, activation="relu", kernel_initializer="he_uniform"),
        pynn.Dense(3, activation="softmax"),
    ], seed=args.seed)
    net.compile(loss="sparse_categorical_crossentropy",
                optimizer=pynn.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
                metrics=["accuracy"])
    print(f"pynn {pynn.__version__} demo: a 2-64-64-3 relu/softmax network learns to "
          f"tell 3 interleaved spirals apart ({x.shape[0]} generated points, batch 32)")
    before = net.evaluate(x, y, return_dict=True)
    print(f"before training: loss {before['loss']:.4f}, accuracy {before['accuracy']:.1%}")
    net.fit(x, y, epochs=args.epochs, batch_size=32, verbose=1 if args.verbose else 2)
    after = net.evaluate(x, y, return_dict=True)
    print(f"after {args.epochs} epochs: loss {after['loss']:.4f}, "
          f"accuracy {after['accuracy']:.1%}")
    return 0


def info(args):
    """Versions, the BLAS pynn multiplies with and its threads, the build."""
    import platform

    import scipy

    import pynn
    from pynn import _build, _dense, _elementwise, _threads, bench

    print(f"pynn {pynn.__version__}")
    print(f"python {platform.python_version()} ({platform.machine()}, {platform.system()})")
    print(f"numpy {np.__version__}, scipy {scipy.__version__}")
    build = _build.BUILD
    print(f"build: Cython {build['cython']}, flags {build['cflags']}, "
          f"bounds checks {'on (PYNN_DEBUG)' if build['debug'] else 'off'}")
    print("float types: float32, float64")
    print(f"subnormals inside compiled calls: {build['subnormals']}")
    ignored = "; PYNN_ISA not honoured" if _dense.REQUEST == "ignored" else ""
    print(f"network kernels: the {_dense.ISA} build (built: {', '.join(_dense.built_isas())}; "
          f"PYNN_ISA={'|'.join(_dense.ISAS)} picks one{ignored})")
    request = {"unknown": "; PYNN_VMATH not understood, ignored",
               "unsupported": "; PYNN_VMATH names a path this CPU lacks, ignored"}
    print(f"exp/tanh/sigmoid/softmax passes: the {_elementwise.isa()} path "
          f"(this CPU runs {', '.join(_elementwise.supported_isas())}; "
          f"PYNN_VMATH={'|'.join(_elementwise.ISAS)} picks one"
          f"{request.get(_elementwise.request_status(), '')})")
    print(f"GEMM backend: {_threads.backend_description()} (PYNN_BLAS=openblas|mkl forces one)")
    for line in bench.blas_info():
        print(f"BLAS {line}")
    setter = _threads.local_thread_setter()
    print("per-call BLAS thread control: " + (
        f"yes ({_threads.local_thread_setter_name()}); a training step's big Dense "
        f"layers in two halves of their units, one BLAS thread and one core each; "
        f"other calls on one thread below {_threads.MIN_PARALLEL_FLOPS:.3g} flops" if setter else
        "no (this BLAS decides its threads alone)"))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pynn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="train a small network and print the loss as it falls")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lines", dest="verbose", action="store_false",
                   help="one line per epoch instead of a progress bar")
    p.set_defaults(func=demo)
    p = sub.add_parser("info", help="versions, BLAS and threads, build flags")
    p.set_defaults(func=info)
    p = sub.add_parser("bench", help="time pynn against a NumPy loop, PyTorch and the limit",
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
