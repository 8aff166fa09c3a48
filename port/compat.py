"""``python -m port.compat [--json] [--batch N] [RELEASE]``: does every net of a release run?

For every def file of a release (``layers*.cfg`` under ``layers/``, ``layers-cifar/`` and
``example-layers/``), the params files that go with it (:mod:`port.cfg_pairs`): the one of the
same stem (``layers-145.cfg`` → ``layer-params-145.cfg``) and those whose diary says which def
file they use (``# ... uses def file 153``, ``# using def file layers-141-2009-2010.cfg``). Then, with the
first params file that parses, three stages, each stopping the row at its first failure:

parsed
    ``port.layer.parse_layers`` reads the def file and the params file (data sizes guessed from
    the cfg by ``port.layer_def.guess_data_dims``, as ``--check-grads`` does without a provider).
built
    ``port.model.ConvNet`` builds every layer (weights on the backend).
ran
    one forward pass, backward pass and weight update (``start_batch``) on synthetic data of the
    net's shapes at a small batch: images uniform in [0, 1), class ids below the class count,
    probability-like targets for crossent costs, and for a ``treefc`` net a class tree of our own
    (the release's batch meta is not published).

Each row has the seconds it took, the number of parameters and, when a stage failed, the one-line
reason. ``RELEASE`` defaults to ``original/alexnet-2012``; ``--json`` writes the rows as JSON to
stdout instead of the table, ``--out FILE`` to a file (the site's docs/compat/alexnet-2012.json).

Not a port: the release has no such tool; this checks the port against the release's cfgs.
"""
from __future__ import annotations

import json
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from port import cfg_pairs
from port import layer as lay
from port import model
from port.layer_def import guess_data_dims
from port.errors import ArgumentParser, UserError, main_guard
from port.cfg_checks import MAX_CFG_BYTES
from port.util import atomic_write_bytes, not_a_file

PROG = "compat"
DEF_DIRS = ("layers", "layers-cifar", "example-layers")
DEFAULT_RELEASE = Path("original/alexnet-2012")


@dataclass
class Row:
    """One def file: what was tried and how far it got."""

    cfg: str                                     # the def file, relative to the release
    params: list[str] = field(default_factory=list)   # its params files (same stem, then diary)
    params_used: str | None = None
    parsed: bool = False
    built: bool = False
    ran: bool = False
    seconds: float = 0.0
    num_params: int | None = None
    reason: str | None = None
    notes: list[str] = field(default_factory=list)


def def_files(release: Path) -> list[Path]:
    """The release's def files, sorted by folder then name."""
    out = []
    for d in DEF_DIRS:
        out += sorted(p for p in (release / d).glob("layers*.cfg") if p.is_file())
    return out


def params_files(release: Path, def_path: Path) -> list[tuple[Path, str]]:
    """The params files that go with ``def_path`` and how (:func:`port.cfg_pairs.def_files_of`),
    same stem first."""
    folder = def_path.parent
    defs = {p.name for p in folder.glob("layers*.cfg")}
    out = []
    for p in sorted(folder.glob("layer-params*.cfg")):
        # A FIFO would block the read and /dev/zero never end: only a regular file of a cfg's size
        # is read for its diary; any other is still tried by stem, and the parser refuses it.
        if not_a_file(p) is not None or p.stat().st_size > MAX_CFG_BYTES:
            text = ""
        else:
            try:
                text = p.read_text(errors="replace")
            except OSError:
                text = ""
        for owner, how in cfg_pairs.def_files_of(p.name, cfg_pairs.comment_lines(text), defs):
            if owner == def_path.name:
                out.append((p, how))
    out.sort(key=lambda ph: ph[1] != "same stem")
    return out


def _one_line(e: BaseException, release: Path | None = None) -> str:
    text = str(e).strip()
    if release is not None:
        text = text.replace(f"{release}/", "")
    text = text.splitlines()
    msg = text[0] if text else ""
    return msg if isinstance(e, UserError) else f"{type(e).__name__}: {msg}"


def synthetic_tree(num_classes: int, fanout: int = 4) -> tuple[list[list[int]], int]:
    """A class tree of our own: leaves 0…C−1, internal nodes above them, ``fanout`` children
    each, as ``batches.meta['tree']`` lists them (node → children); returns (tree, root)."""
    tree: list[list[int]] = [[] for _ in range(num_classes)]
    level = list(range(num_classes))
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level), fanout):
            tree.append(level[i:i + fanout])
            nxt.append(len(tree) - 1)
        level = nxt
    return tree, level[0]


def _treefc_classes(def_path: Path) -> tuple[int, str] | None:
    """For a def file with a ``treefc`` layer: the class count its data provider would give, read
    from the def file the tree net was made from (``layers-137-tree.cfg`` → the ``outputs`` of the
    same-named layer in ``layers-137.cfg``), and where it was read."""
    mcp = lay.MyConfigParser(def_path, "layer definition file")
    tree = [s for s in mcp.sections() if mcp.safe_get(s, "type", default="") == "treefc"]
    if not tree:
        return None
    stem = def_path.name[:-len(".cfg")]
    sibling = def_path.with_name(stem[:-len("-tree")] + ".cfg") if stem.endswith("-tree") else None
    if sibling is None or not sibling.is_file():
        return None
    sib = lay.MyConfigParser(sibling, "layer definition file")
    if sib.has_option(tree[0], "outputs"):
        return sib.safe_get_int(tree[0], "outputs"), f"{sibling.name} [{tree[0]}] outputs"
    return None


def synthetic_data(layers: dict, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One (D, N) float32 matrix per dataIdx, shaped for the parsed net: class ids below the class
    count where a logreg/msm cost reads labels, columns summing to 1 where a crossent cost reads a
    distribution, uniform [0, 1) values elsewhere (images, tags, gates)."""
    out: dict[int, np.ndarray] = {}
    for dl in sorted((l for l in layers.values() if l["type"] == "data"), key=lambda l: l["dataIdx"]):
        if dl["dataIdx"] in out:
            continue
        x = rng.random((dl["outputs"], n), dtype=np.float32)
        for l in layers.values():
            inputs = l.get("inputs") or []
            if not l["type"].startswith("cost.") or not inputs or inputs[0] != dl["name"]:
                continue
            if l["type"] in ("cost.logreg", "cost.msm"):
                classes = layers[inputs[1]]["outputs"]
                x = rng.integers(0, classes, size=(dl["outputs"], n)).astype(np.float32)
            elif l["type"] == "cost.crossent":
                x = x / x.sum(axis=0, keepdims=True)
        out[dl["dataIdx"]] = x
    return [out[i] for i in sorted(out)]


def parse_options(def_path: Path, trust_code: bool = False) -> tuple[dict, list[str]]:
    """What the check parses a def file with beyond its params file, and notes saying so: for a
    ``treefc`` net, a class tree of our own (:func:`synthetic_tree`); ``trust_code`` as given.
    The site's experiment pages parse with the same options, so they and this table say the same
    (archive.experiment_history)."""
    opts: dict = {"trust_code": trust_code}
    notes = []
    try:
        found = _treefc_classes(def_path)
    except Exception:  # noqa: BLE001 (the parse reports it)
        found = None
    if found:
        classes, where = found
        opts["tree"], opts["root_label"] = synthetic_tree(classes)
        opts["num_classes"] = classes
        notes.append(f"treefc: a class tree of our own over {classes} classes ({where}); "
                     "the release's batches.meta tree is not published")
    return opts, notes


def check(release: Path, def_path: Path, batch: int = 8, seed: int = 0,
          trust_code: bool = False) -> Row:
    """Parse, build and step one def file; never raises for the net's own problems.

    ``trust_code`` (``--trust-code``) lets an ``initWFunc`` import the module its cfg names from
    the def file's folder; without it such a row stops at parsing, its reason saying what was
    refused (a folder one points compat at should not run its code)."""
    row = Row(cfg=str(def_path.relative_to(release)))
    candidates = params_files(release, def_path)
    row.params = [str(p.relative_to(release)) for p, _ in candidates]
    t0 = time.perf_counter()
    opts, notes = parse_options(def_path, trust_code)
    opts.update(seed=seed, minibatch_size=batch)
    row.notes += notes
    layers = None
    if not candidates:
        row.reason = "no params file (none of the same stem, no diary names this def file)"
    errors = []
    for p, how in candidates:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if "data_dims" not in opts:    # as --check-grads without a provider
                    opts["data_dims"] = guess_data_dims(def_path, opts)
                layers = lay.parse_layers(def_path, p, opts)
            row.params_used = str(p.relative_to(release))
            if how != "same stem":
                row.notes.append(f"params file by {how}")
            break
        except Exception as e:  # noqa: BLE001 (any failure is the row's reason)
            errors.append(_one_line(e, release))
    if layers is None:
        if errors:
            row.reason = errors[0]
        row.seconds = round(time.perf_counter() - t0, 2)
        return row
    row.parsed = True
    try:
        net = model.ConvNet(layers, minibatch_size=batch, rng=seed)
        row.built = True
        row.num_params = int(net.num_params())
        data = synthetic_data(layers, batch, np.random.default_rng(seed))
        net.start_batch(data, progress=0.0)
        costs, _ = net.finish_batch()
        bad = [k for k, v in costs.items() if not all(np.isfinite(v))]
        if bad:
            row.reason = f"cost {bad[0]} is not finite after one step"
        else:
            row.ran = True
    except Exception as e:  # noqa: BLE001
        row.reason = _one_line(e, release)
    row.seconds = round(time.perf_counter() - t0, 2)
    return row


def run(release: Path, batch: int = 8, progress: bool = True, only: list[str] | None = None,
        trust_code: bool = False) -> list[Row]:
    files = def_files(release)
    if only:
        files = [f for f in files if f.name in only or str(f.relative_to(release)) in only]
    if not files:
        raise UserError(f"{release}: no def files (layers*.cfg) under {', '.join(DEF_DIRS)}")
    rows = []
    bar = tqdm(files, desc="def files", unit="cfg", disable=not progress, file=sys.stderr)
    for f in bar:
        bar.set_postfix_str(f.name)
        rows.append(check(release, f, batch, trust_code=trust_code))
    return rows


def summary(rows: list[Row]) -> dict:
    return {"def_files": len(rows), "parsed": sum(r.parsed for r in rows),
            "built": sum(r.built for r in rows), "ran": sum(r.ran for r in rows)}


def format_table(rows: list[Row]) -> str:
    w = max(len(r.cfg) for r in rows)
    lines = [f"{'def file':<{w}}  parsed built ran  seconds   params  reason / params file"]
    for r in rows:
        mark = lambda b: "yes" if b else "-"  # noqa: E731
        tail = r.reason or (r.params_used or "")
        lines.append(f"{r.cfg:<{w}}  {mark(r.parsed):<6} {mark(r.built):<5} {mark(r.ran):<4}"
                     f"{r.seconds:>7.1f} {r.num_params or 0:>10,}  {tail}")
    s = summary(rows)
    lines.append(f"{s['def_files']} def files: {s['parsed']} parsed, {s['built']} built, {s['ran']} ran a step")
    return "\n".join(lines)


@main_guard(PROG)
def main(argv=None) -> int:
    ap = ArgumentParser(prog=f"python -m port.{PROG}", description=__doc__.splitlines()[0])
    ap.add_argument("release", nargs="?", default=str(DEFAULT_RELEASE),
                    help="a release folder (default: %(default)s)")
    ap.add_argument("--json", action="store_true", help="write the rows as JSON to stdout")
    ap.add_argument("--out", help="write the JSON to this file (atomically) instead of stdout")
    ap.add_argument("--batch", type=int, default=8, help="cases in the synthetic minibatch (default 8)")
    ap.add_argument("--only", action="append", help="only this def file (repeatable)")
    ap.add_argument("--trust-code", action="store_true",
                    help="let a cfg's initWFunc/initBFunc/initCFunc import Python modules from the "
                         "release folder (off: only the port's initw runs; others are refused)")
    args = ap.parse_args(argv)
    if args.batch < 1:
        raise UserError(f"--batch must be at least 1, got {args.batch}")
    release = Path(args.release)
    if not release.is_dir():
        raise UserError(f"{release}: not a folder (fetch the release first: python -m archive fetch)")
    rows = run(release, args.batch, progress=sys.stderr.isatty(), only=args.only,
               trust_code=args.trust_code)
    if args.json or args.out:
        text = json.dumps({"release": release.name, "batch": args.batch, "summary": summary(rows),
                           "rows": [asdict(r) for r in rows]}, indent=1) + "\n"
        if args.out:
            atomic_write_bytes(Path(args.out), lambda f: f.write(text.encode()))
        else:
            sys.stdout.write(text)
    else:
        print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
