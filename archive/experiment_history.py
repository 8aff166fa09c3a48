"""The experiment history of the 2012 release, read from its ``layers/`` folder (the data; no Sphinx).

The folder holds about a year of ImageNet experiments as pairs of files: a *def* file
``layers-<stem>.cfg`` (the architecture, ``--layer-def``) and a *params* file
``layer-params-<stem>.cfg`` (learning rates and other hyper-parameters, ``--layer-params``). The
author kept a diary in ``#`` comments at the end of each params file: the machine, the log file,
the ``ConvNet__<date>`` checkpoint directory, what was changed at which epoch, and the final error
rates (``logprob:  1.741473, 0.406640, 0.182100`` = cost in nats, top-1 error, top-5 error).

This module turns that folder into a timeline:

- :func:`parse_diary` splits a params file's comments into blocks (one per run), and finds the
  checkpoint paths (dates), the ``epoch N:`` events and the results in each;
- :func:`pair_def` finds the def file of a params file (the diary's own "uses def file N", the
  same stem, or the stem with its suffixes removed: the rules of :mod:`port.cfg_pairs`);
- :func:`load_experiments` does both for every params file of a folder, in numbering order
  (the numbering is chronological);
- :func:`diff_files` is a unified diff between two cfg files (optionally of settings only), and
  :func:`structural_diff` the same change in layer terms, from two parsed nets.

It does not parse the cfg semantics itself: :func:`parse_def` reads a def file with the port's
cfg parser (``port.layer.parse_layers``) and reports a failure as one line. It draws nothing:
the site's pages (``archive.sphinxext.experiment_pages``) and diagrams
(``archive.sphinxext.diagrams``) are drawn from what it returns.
"""
from __future__ import annotations

import contextlib
import difflib
import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from port.cfg_pairs import comment, pair

# The one rule the site dates experiments by (the timeline, the tables and each page state it).
DATE_RULE = ("an experiment's dates are those of the ConvNet__<date> checkpoint paths in its own diary notes "
             "(notes copied from another experiment left out): it started on the earliest and ran until the "
             "latest")
PARAMS_RE = re.compile(r"^layer-params-(?P<stem>.+)\.cfg$")
DEF_RE = re.compile(r"^layers-(?P<stem>.+)\.cfg$")
CHECKPOINT_RE = re.compile(
    r"(?P<path>\S*ConvNet__(?P<date>\d{4}-\d\d-\d\d)_(?P<time>\d\d\.\d\d\.\d\d)\S*)")
EVENT_RE = re.compile(r"^(?:epoch|epcoh)\s+(?P<epoch>[\d.]+x?)\s*:\s*(?P<text>.*)$", re.I)
# cost, top-1 error, top-5 error: "logprob:  1.741473, 0.406640, 0.182100", "[1.59, 0.37, 0.16]"
TRIPLE_RE = re.compile(
    r"(?<![\w.])(?P<cost>\d+(?:\.\d+)?)\s*,\s*(?P<top1>\d*\.\d+)\s*,\s*(?P<top5>\d*\.\d+)")
# top-1, top-5 alone on a line: "0.38107167346938753, 0.17608947619047613"
PAIR_RE = re.compile(r"^\s*(?P<top1>0?\.\d+)\s*,\s*(?P<top5>0?\.\d+)\s*$")
# A block that copies another experiment's diary: "135 notes:", "141-2009 notes, before ..."
NOTES_RE = re.compile(r"^#?(?P<stem>\d[\w.-]*)\s+notes\b", re.I)
# The experiment it was derived from: "this is like #137 but ...", "this is 145, and ...".
PARENT_RES = (
    re.compile(r"\blike\s+#?(?P<stem>\d[\w-]*\w)", re.I),
    re.compile(r"^this is\s+#?(?P<stem>\d[\w-]*\w)\b", re.I),
    re.compile(r"\bbased on\s+#?(?P<stem>\d[\w-]*\w)", re.I),
)
BOOKKEEPING_RE = re.compile(
    r"^(on \S+\s*$|on gpu\b|guppy\d*\s*$|krunch\s*$|logs?/|/|\(?guppy|set |killed|moved|paused|"
    r"resum|made backup|init |valid|test|multi|logprob|[\d\[(.]|#?\s*$)", re.I)
TITLE_HINT_RE = re.compile(r"\b(this is|this trains|like #?\d|based on|hybrid|trained on|training on)\b", re.I)


@dataclass(frozen=True)
class Checkpoint:
    """A ``ConvNet__<date>_<time>`` checkpoint directory named in a diary."""
    line: int   # 1-based line in the params file
    path: str
    date: str   # YYYY-MM-DD
    time: str   # HH:MM:SS


@dataclass(frozen=True)
class Event:
    """An ``epoch N: ...`` diary line (a change of learning rate, colour noise, a kill...)."""
    line: int
    epoch: str
    text: str


@dataclass(frozen=True)
class Result:
    """Error rates written in a diary: top-1 and top-5 error as fractions, cost in nats if given."""
    line: int
    label: str            # what the author wrote before the numbers ("validation multiview", ...)
    top1: float
    top5: float
    cost: float | None

    @property
    def multiview(self) -> bool:
        return "multiview" in self.label.lower() or "multliview" in self.label.lower()


@dataclass(frozen=True)
class Block:
    """One run of a diary: consecutive comment lines, between blank lines or setting lines."""
    first_line: int
    lines: tuple[tuple[int, str], ...]   # (line number, text without the leading '#')
    own: bool                            # False for notes copied from another experiment
    checkpoints: tuple[Checkpoint, ...]
    events: tuple[Event, ...]
    results: tuple[Result, ...]

    @property
    def last_line(self) -> int:
        return self.lines[-1][0]


@dataclass(frozen=True)
class Diary:
    blocks: tuple[Block, ...]

    @property
    def own_blocks(self) -> tuple[Block, ...]:
        return tuple(b for b in self.blocks if b.own)

    @property
    def lines(self) -> tuple[tuple[int, str], ...]:
        return tuple(x for b in self.blocks for x in b.lines)

    @property
    def title(self) -> tuple[int, str] | None:
        """The line saying what the experiment is ("this is like #137 but without low-res stuff")."""
        own = [x for b in self.own_blocks for x in b.lines if x[1].strip()]
        for ln, text in own:
            if TITLE_HINT_RE.search(text):
                return ln, text.strip()
        for ln, text in own:   # else the first line that is not a machine, log, path or event
            if not (BOOKKEEPING_RE.match(text) or EVENT_RE.match(text) or CHECKPOINT_RE.search(text)):
                return ln, text.strip()
        return None

    @property
    def checkpoints(self) -> tuple[Checkpoint, ...]:
        return tuple(c for b in self.own_blocks for c in b.checkpoints)

    @property
    def start_date(self) -> str | None:
        """When the experiment started, by the one rule of the site (:data:`DATE_RULE`): the
        earliest date of the ``ConvNet__<date>`` checkpoint paths in its own notes (notes copied
        from another experiment left out), the first of :attr:`dates`."""
        d = self.dates
        return d[0] if d else None

    @property
    def dates(self) -> tuple[str, str] | None:
        """The first and last checkpoint dates of the experiment's own runs."""
        ds = sorted(c.date for c in self.checkpoints)
        return (ds[0], ds[-1]) if ds else None

    @property
    def results(self) -> tuple[Result, ...]:
        return tuple(r for b in self.own_blocks for r in b.results)

    @property
    def headline(self) -> Result | None:
        """The first result of the experiment's own runs (the author's final number for it)."""
        rs = self.results
        return rs[0] if rs else None

    @property
    def parent(self) -> str | None:
        """The experiment this one says it was derived from ("like #137" → ``"137"``)."""
        t = self.title
        if t is None:
            return None
        for rx in PARENT_RES:
            m = rx.search(t[1].strip())
            if m:
                return m.group("stem")
        return None


@dataclass(frozen=True)
class Experiment:
    stem: str
    params_path: str          # relative to the release root, e.g. "layers/layer-params-145.cfg"
    def_stem: str | None
    def_path: str | None      # None when the def file is not in the release
    pairing: str              # how the def file was found, in words
    diary: Diary
    number: int | None        # the experiment number (chronological), when the stem has one
    params_lines: int = 0
    missing_def: str | None = None   # a def stem the diary names but the release lacks
    named_defs: tuple[str, ...] = ()  # every def stem of the release the diary's own runs name

    @property
    def label(self) -> str:
        return f"#{self.stem}"


@dataclass(frozen=True)
class Timeline:
    experiments: tuple[Experiment, ...]
    def_stems: tuple[str, ...]
    unused_defs: tuple[str, ...] = field(default=())   # def files no params file pairs with or names

    def get(self, stem: str) -> Experiment | None:
        return next((e for e in self.experiments if e.stem == stem), None)

    def previous(self, stem: str) -> Experiment | None:
        stems = [e.stem for e in self.experiments]
        i = stems.index(stem)
        return self.experiments[i - 1] if i > 0 else None


# ---- diary parsing -------------------------------------------------------------------------

def _label(prefix: str, previous: str | None) -> str:
    label = prefix.strip().strip("[(").strip()
    label = re.sub(r"\blogprob\b\s*:?", "", label, flags=re.I).strip(" :")
    if not label and previous and previous.rstrip().endswith(":") and not EVENT_RE.match(previous):
        label = previous.rstrip().rstrip(":").strip()
    return label


def _results(lines: list[tuple[int, str]]) -> list[Result]:
    out = []
    previous = None
    for ln, text in lines:
        m = TRIPLE_RE.search(text)
        if m and not EVENT_RE.match(text) and not CHECKPOINT_RE.search(text):
            cost, top1, top5 = float(m["cost"]), float(m["top1"]), float(m["top5"])
            if 0 <= top5 <= top1 <= 1:
                out.append(Result(ln, _label(text[:m.start()], previous), top1, top5, cost))
        else:
            m = PAIR_RE.match(text)
            if m:
                top1, top5 = float(m["top1"]), float(m["top5"])
                if 0 <= top5 <= top1 <= 1:
                    out.append(Result(ln, _label("", previous), top1, top5, None))
        previous = text
    return out


def parse_diary(text: str) -> Diary:
    """The diary of a params file: its comment lines grouped into runs.

    A block is a run of consecutive comment lines. A block whose first line reads
    ``<stem> notes`` starts the notes copied from another experiment; it and every block after
    it are marked ``own=False``.
    """
    raw_blocks: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    for i, line in enumerate(text.splitlines(), start=1):
        c = comment(line)
        if c is None:
            if current:
                raw_blocks.append(current)
                current = []
            continue
        if current and NOTES_RE.match(c):
            raw_blocks.append(current)
            current = []
        current.append((i, c))
    if current:
        raw_blocks.append(current)

    blocks = []
    own = True
    for lines in raw_blocks:
        meaningful = [x for x in lines if x[1]]
        if not meaningful:
            continue
        if NOTES_RE.match(meaningful[0][1]):
            own = False
        checkpoints = tuple(Checkpoint(ln, m["path"], m["date"], m["time"].replace(".", ":"))
                            for ln, t in lines for m in CHECKPOINT_RE.finditer(t))
        events = tuple(Event(ln, m["epoch"], m["text"].strip())
                       for ln, t in lines if (m := EVENT_RE.match(t)))
        blocks.append(Block(lines[0][0], tuple(lines), own, checkpoints, events,
                            tuple(_results(lines))))
    return Diary(tuple(blocks))


# ---- pairing params files with def files --------------------------------------------------

def experiment_number(stem: str) -> int | None:
    """The experiment number in a stem: ``145-half`` → 145, ``flickr-102`` → 102,
    ``2009-101`` → 101 (2009 is the ImageNet year), ``inet-5layer-conv94-2gpu`` → 94."""
    nums = [int(n) for n in re.findall(r"(?<![a-z\d])(?:conv)?(\d+)(?![a-z\d])", stem)
            if 10 <= int(n) < 1000]
    if not nums:
        nums = [int(n) for n in re.findall(r"(\d+)", stem) if 10 <= int(n) < 1000]
    return nums[0] if nums else None


def pair_def(stem: str, diary: Diary,
             def_stems: set[str]) -> tuple[str | None, str, str | None, tuple[str, ...]]:
    """The def-file stem of params file ``stem`` by the rules of :func:`port.cfg_pairs.pair`, read
    from the experiment's own blocks (not the notes copied from another): (def stem or None, rule
    in words, a stem the diary names that the release lacks, every def stem those blocks name)."""
    p = pair(f"layer-params-{stem}.cfg", [x for b in diary.own_blocks for x in b.lines],
             {f"layers-{s}.cfg" for s in def_stems})
    stems = [DEF_RE.match(n)["stem"] if n else None for n in (p.def_file, *p.named)]
    return stems[0], p.rule, p.missing, tuple(stems[1:])


def load_experiments(layers_dir: Path, rel_dir: str = "layers") -> Timeline:
    """Every ``layer-params-*.cfg`` of ``layers_dir`` as an :class:`Experiment`, in numbering
    order (then start date, then stem). ``rel_dir`` is the folder's path inside the release."""
    layers_dir = Path(layers_dir)
    names = sorted(p.name for p in layers_dir.iterdir() if p.is_file())
    def_stems = {m["stem"] for n in names if (m := DEF_RE.match(n))}
    exps = []
    for n in names:
        m = PARAMS_RE.match(n)
        if not m:
            continue
        stem = m["stem"]
        text = (layers_dir / n).read_text(encoding="utf-8", errors="replace")
        diary = parse_diary(text)
        def_stem, rule, missing, named = pair_def(stem, diary, def_stems)
        exps.append(Experiment(
            stem=stem, params_path=f"{rel_dir}/{n}", def_stem=def_stem,
            def_path=f"{rel_dir}/layers-{def_stem}.cfg" if def_stem else None, pairing=rule,
            diary=diary, number=experiment_number(stem),
            params_lines=text.count("\n") + (0 if text.endswith("\n") or not text else 1),
            missing_def=missing, named_defs=named))
    exps.sort(key=lambda e: (e.number if e.number is not None else 10**6,
                             e.diary.start_date or "9999", e.stem))
    used = {e.def_stem for e in exps if e.def_stem} | {d for e in exps for d in e.named_defs}
    return Timeline(tuple(exps), tuple(sorted(def_stems)), tuple(sorted(def_stems - used)))


# ---- diffs ---------------------------------------------------------------------------------

def settings_text(text: str) -> str:
    """A cfg file without its comment lines (the settings only)."""
    return "".join(l for l in text.splitlines(keepends=True) if comment(l) is None)


def diff_files(a: Path, b: Path, a_name: str, b_name: str, settings_only: bool = False,
               context: int = 2) -> str:
    """A unified diff from ``a`` to ``b`` ("" when they are equal)."""
    ta = a.read_text(encoding="utf-8", errors="replace")
    tb = b.read_text(encoding="utf-8", errors="replace")
    if settings_only:
        ta, tb = settings_text(ta), settings_text(tb)
    return "".join(difflib.unified_diff(ta.splitlines(keepends=True), tb.splitlines(keepends=True),
                                        a_name, b_name, n=context))


# ---- parsed networks -----------------------------------------------------------------------

def parse_def(def_path: Path) -> tuple[dict | None, str | None]:
    """The port's parse of a def file without weights: (layers, None), or (None, one-line error)."""
    try:  # late: the site still builds, saying why on the page, when the port cannot be imported
        from port.compat import parse_options
        from port.layer import parse_layers
        from port.layer_def import guess_data_dims
    except Exception as e:  # the port's parser is not importable: say so on the page
        return None, f"the port's cfg parser is unavailable ({type(e).__name__}: {e})"
    if not Path(def_path).is_file():
        return None, f"{def_path}: no such file"
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            opts, _ = parse_options(Path(def_path))   # as python -m port.compat parses it (treefc)
            opts["data_dims"] = guess_data_dims(def_path, opts)
            layers = parse_layers(def_path, None, opts, init_weights=False)
    except Exception as e:
        msg = " ".join(str(e).split()) or type(e).__name__
        return None, msg.replace(str(def_path), Path(def_path).name)
    return dict(layers), None


def layer_inputs(layer: dict, names: list[str]) -> list[str]:
    out = []
    for x in layer.get("inputs", []) or []:
        if isinstance(x, int):
            out.append(names[x])
        elif isinstance(x, dict):
            out.append(x.get("name"))
        else:
            out.append(str(x))
    return [x for x in out if x in names]


def layer_summary(layer: dict) -> str:
    """A short description of a layer for its box ("conv 48@11²/4", "fc 2048", "pool max 3/2")."""
    t = str(layer.get("type", "?"))

    def first(key):
        v = layer.get(key)
        return v[0] if isinstance(v, (list, tuple)) and v else v

    if t in ("conv", "local"):
        s = f"{t} {first('filters') if 'filters' in layer else '?'}"
        fs, st = first("filterSize"), first("stride")
        if fs is not None:
            s += f" {fs}×{fs}"
        if st not in (None, 1):
            s += f"/{st}"
    elif t == "fc":
        s = f"fc {layer.get('outputs', '?')}"
    elif t == "pool":
        s = f"pool {layer.get('pool', '')} {layer.get('sizeX', '')}/{layer.get('stride', '')}".strip()
    elif t in ("rnorm", "cmrnorm", "cnorm"):
        s = f"{t} {layer.get('size', '')}".strip()
    elif t == "hs":
        s = f"hs keep {layer.get('keep', '')}".strip()
    elif t == "neuron":
        n = layer.get("neuron")
        s = f"neuron {n.get('type') if isinstance(n, dict) else n or ''}".strip()
    else:
        s = t
    n = layer.get("neuron")
    if t != "neuron" and n:
        s += f" +{n.get('type') if isinstance(n, dict) else n}"
    return s


def folded_neurons(layers: dict) -> dict[str, str]:
    """Neuron layers spawned by a ``neuron=`` key (``<name>_neuron`` over ``<name>``), mapped to
    the layer they belong to: the diagram draws them inside that layer's box."""
    names = list(layers)
    out = {}
    for n, l in layers.items():
        ins = layer_inputs(l, names)
        if l.get("type") == "neuron" and len(ins) == 1 and n == f"{ins[0]}_neuron":
            out[n] = ins[0]
    return out


# ---- architecture differences ------------------------------------------------------------

STRUCTURE_KEYS = ("type", "inputs", "gpu", "channels", "filters", "filterSize", "stride", "padding",
                  "groups", "randSparse", "sizeX", "pool", "size", "outputs", "neuron", "keep",
                  "dataIdx", "coeffs")


def _plain(v):
    if isinstance(v, dict):
        return v.get("type", v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def structural_diff(a: dict, b: dict) -> list[str]:
    """The architectural changes from parsed net ``a`` to parsed net ``b``, one line each:
    layers removed, added, and for common layers the def-file keys whose values differ
    (``STRUCTURE_KEYS``). Neuron layers spawned by ``neuron=`` are compared through that key."""
    fa, fb = folded_neurons(a), folded_neurons(b)
    na = [n for n in a if n not in fa]
    nb = [n for n in b if n not in fb]
    out = [f"removed {n} ({a[n].get('type')})" for n in na if n not in b]
    out += [f"added {n} ({layer_summary(b[n])})" for n in nb if n not in a]
    for n in nb:
        if n not in a:
            continue
        ins_a = [fa.get(x, x) for x in layer_inputs(a[n], list(a))]
        ins_b = [fb.get(x, x) for x in layer_inputs(b[n], list(b))]
        for k in STRUCTURE_KEYS:
            if k == "outputs" and b[n].get("type") != "fc":
                continue   # derived from the other keys, except for fc layers
            va, vb = (ins_a, ins_b) if k == "inputs" else (_plain(a[n].get(k)), _plain(b[n].get(k)))
            if va == vb or (va in (None, "", []) and vb in (None, "", [])):
                continue
            if (k != "inputs" and ins_a != ins_b and isinstance(va, list) and isinstance(vb, list)
                    and all(x in va for x in vb)):
                continue   # a per-input list that only lost the entries of removed inputs
            out.append(f"{n}: {k} {va} → {vb}")
    return out


# ---- the published experiments -------------------------------------------------------------

# The NIPS 2012 network and the runs that reproduce the paper's ablations (inventory §7).
MARKED: dict[str, str] = {
    "145": "the NIPS 2012 network (paper: 1 CNN, 40.7% / 18.2%)",
    "145-2010": "the NIPS 2012 network on ILSVRC-2010 (paper Table 1: 37.5% / 17.0%)",
    "145-half": "ablation: one column (paper §3.2: two GPUs gain 1.7% / 1.2%)",
    "147": "ablation: non-overlapping pooling (paper §3.4: overlap gains 0.4% / 0.3%)",
    "148": "ablation: no normalization layers (paper §3.3: LRN gains 1.4% / 1.2%)",
}
