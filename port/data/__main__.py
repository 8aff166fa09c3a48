"""``python -m port.data cifar10|imagenet ...``: build batch folders the providers read (see convert.py).

Not a port: the command line of the converters, which the release does not have.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from port.data.convert import CIFAR10_URL, convert_cifar10, convert_imagenet
from port.errors import ArgumentParser, UserError, main_guard


def _fmt(r) -> str:
    return "none" if r is None else (f"{r[0]}" if r[0] == r[1] else f"{r[0]}-{r[1]}")


def _int_in(lo: int, hi: int, why: str):
    """An argparse type: an int in [lo, hi] (a value outside is one line, not a traceback)."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"must lie in {lo}..{hi} ({why}), got {v}")
        return v
    parse.__name__ = "int"
    return parse


#: --size bound: the mean image alone is 24·S² bytes of float64 while converting (S=4096: 400 MB).
MAX_IMAGE_SIZE = 4096


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m port.data", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("cifar10", help="official CIFAR-10 python release -> cuda-convnet batches")
    c.add_argument("--source", type=Path, default=None,
                   help=f"cifar-10-python.tar.gz, cifar-10-batches-py/, or a folder with "
                        f"data_batch_1..; omitted: download {CIFAR10_URL}")
    c.add_argument("--out", type=Path, required=True, help="folder to write the batches into")
    c.add_argument("--split", action="store_true",
                   help="hold out the last training batch as the test batch (for a source "
                        "without test_batch, e.g. the shared subset)")
    i = sub.add_parser("imagenet", help="ILSVRC2012 tars (or Kaggle's copy, or a tree of class "
                                        "folders) -> JPEG batches")
    i.add_argument("--source", type=Path, required=True,
                   help="ILSVRC2012_img_train.tar (a tar of <wnid>.tar), or TREE/<class>/<image>")
    i.add_argument("--val", type=Path, default=None,
                   help="ILSVRC2012_img_val.tar or a flat folder of ILSVRC2012_val_*.JPEG, written "
                        "as the test batches (labels from --devkit or --val-labels/--synsets)")
    i.add_argument("--devkit", type=Path, default=None,
                   help="ILSVRC2012_devkit_t12.tar.gz (meta.mat and the validation ground truth)")
    i.add_argument("--val-labels", type=Path, default=None, help="Kaggle's LOC_val_solution.csv")
    i.add_argument("--synsets", type=Path, default=None, help="Kaggle's LOC_synset_mapping.txt")
    i.add_argument("--workers", type=int, default=None,
                   help="processes converting images (default: every core; 0: this process)")
    i.add_argument("--follow-links", action="store_true",
                   help="pack symbolic links that point out of the tree (default: skip and list)")
    i.add_argument("--out", type=Path, required=True, help="folder to write the batches into")
    i.add_argument("--test-source", type=Path, default=None,
                   help="a second tree with the same class folders, written as the test batches")
    i.add_argument("--test-fraction", type=float, default=0.0,
                   help="hold out this fraction of each class as test batches (default 0)")
    i.add_argument("--batch-size", type=int, default=1024, help="images per batch (default 1024)")
    i.add_argument("--size", type=_int_in(1, MAX_IMAGE_SIZE, "pixels per side"), default=256,
                   help="image side in pixels (default 256)")
    i.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    i.add_argument("--seed", type=_int_in(0, 2 ** 63 - 1, "NumPy seeds are not negative"), default=0,
                   help="shuffle seed for the training images")
    return p


@main_guard("python -m port.data")
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "cifar10":
            s = convert_cifar10(args.source, args.out, split=args.split)
        else:
            s = convert_imagenet(args.source, args.out, batch_size=args.batch_size, size=args.size,
                                 test_source=args.test_source, test_fraction=args.test_fraction,
                                 quality=args.quality, seed=args.seed, val=args.val,
                                 devkit=args.devkit, val_labels=args.val_labels,
                                 synsets=args.synsets, workers=args.workers,
                                 follow_links=args.follow_links)
    except OSError as e:  # e.g. --out is a file, or a folder without permission
        raise UserError(f"{e.filename or args.out}: {e.strerror or e}") from None
    if args.command == "cifar10":
        print(f"wrote {args.out}: training batches {_fmt(s['train_range'])} ({s['train_cases']} "
              f"images), test batches {_fmt(s['test_range'])} ({s['test_cases']} images)")
    else:
        print(f"wrote {args.out}: {s['classes']} classes, training batches {_fmt(s['train_range'])} "
              f"({s['train_cases']} images), test batches {_fmt(s['test_range'])} "
              f"({s['test_cases']} images), {s['skipped']} files skipped (listed in {s['report']})"
              + (f"; {s['resumed_batches']} batches kept from an earlier run"
                 if s["resumed_batches"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
