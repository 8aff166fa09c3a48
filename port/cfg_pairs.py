"""Which layer-params file goes with which layer-def file, in a folder of a release.

A folder of cfg files holds *def* files ``layers<suffix>.cfg`` (the architecture,
``--layer-def``) and *params* files ``layer-params<suffix>.cfg`` (the hyper-parameters,
``--layer-params``); ``<suffix>`` is ``-145``, ``-120-4gpu-auto2``, ``.gc``... The release says
which goes with which only in the author's ``#`` comments (the diary) and in the names:

1. the def files the diary names: "uses def file 153", "using def file layers-141-2009-2010.cfg",
   "uses config file #153-4gpu", "(def file 101)", "like #153 (so uses same file)";
2. the def file of the same suffix;
3. failing both, the def file whose suffix is the longest ``-``-prefix of its own
   (``layer-params-120-4gpu-auto2.cfg`` → ``layers-120-4gpu.cfg``, ``-145-2010`` → ``-145``).

:func:`pair` applies them to one params file. ``python -m port.compat`` tries a def file with
every params file that goes with it; the site's experiment history
(``archive.experiment_history``) gives each params file one def file, the diary's first.

Not a port: the release has no such tool.
"""
from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

#: How the diary names a def file; the group ``stem`` is the name without ``layers-`` and ``.cfg``.
DEF_FILE_RES = (
    re.compile(r"\b(?:uses?|using)\s+(?:the\s+)?(?:same\s+)?(?:def|config)\s+file:?\s*"
               r"#?(?:layers-)?(?P<stem>\d[\w-]*?)(?:\.cfg)?(?=[\s).,]|$)", re.I),
    re.compile(r"\(def file\s+#?(?P<stem>\d[\w-]*)\)", re.I),
    re.compile(r"like\s+#?(?P<stem>\d[\w-]*)\s*\((?:so|hence)\s+uses\s+(?:the\s+)?same\s+file", re.I),
)


def comment(line: str) -> str | None:
    """The text of a cfg comment line (``#`` or ``;`` first), stripped; None for any other line."""
    s = line.strip()
    if s.startswith("#") or s.startswith(";"):
        return s[1:].strip()
    return None


def comment_lines(text: str) -> list[tuple[int, str]]:
    """(1-based line number, comment text) of every comment line of a cfg file's text."""
    return [(i, c) for i, line in enumerate(text.splitlines(), start=1)
            if (c := comment(line)) is not None]


def def_name(stem: str) -> str:
    """``153`` → ``layers-153.cfg``."""
    return f"layers-{stem}.cfg"


def same_stem(params_name: str) -> str:
    """``layer-params-145.cfg`` → ``layers-145.cfg``; ``layer-params.gc.cfg`` → ``layers.gc.cfg``."""
    return "layers" + params_name[len("layer-params"):]


@dataclass(frozen=True)
class Pairing:
    """What the rules say of one params file."""
    def_file: str | None        # the def file's name (the diary's first, then same suffix, then prefix)
    rule: str                   # how it was found, in words
    missing: str | None         # a def stem the diary names that the folder lacks (its first)
    named: tuple[str, ...]      # every def file of the folder that the diary names, in order


def pair(params_name: str, lines: Iterable[tuple[int, str]], def_names: Collection[str]) -> Pairing:
    """The def file of params file ``params_name`` among ``def_names`` (file names of one folder),
    read from its comment ``lines`` ((line number, text), e.g. :func:`comment_lines`)."""
    suffix = params_name[len("layer-params"):-len(".cfg")]
    named: list[str] = []
    first, missing = None, None
    for ln, text in lines:
        for rx in DEF_FILE_RES:
            for m in rx.finditer(text):
                name = def_name(m.group("stem"))
                if name not in def_names:
                    missing = missing or m.group("stem")
                elif name not in named:
                    named.append(name)
                    first = first or (name, f"the diary says so (line {ln}: “{text.strip()}”)")
    if first:
        return Pairing(first[0], first[1], None, tuple(named))
    if same_stem(params_name) in def_names:
        return Pairing(same_stem(params_name), "same stem", missing, ())
    parts = suffix.split("-")
    for k in range(len(parts) - 1, 1, -1):   # parts[0] is '' (the suffix starts with '-')
        cand = "layers" + "-".join(parts[:k]) + ".cfg"
        if cand in def_names:
            return Pairing(cand, f"stem without “-{'-'.join(parts[k:])}”", missing, ())
    if missing:
        return Pairing(None, f"the diary names def file #{missing}, which the release lacks", missing, ())
    return Pairing(None, "no def file found", None, ())


def def_files_of(params_name: str, lines: Iterable[tuple[int, str]],
                 def_names: Collection[str]) -> list[tuple[str, str]]:
    """Every def file that params file ``params_name`` may go with, and how that was decided
    (``same stem``, ``diary``, ``stem prefix``): the one of the same suffix and those the diary
    names; failing both, the prefix rule's."""
    p = pair(params_name, lines, def_names)
    same = same_stem(params_name)
    out = [(same, "same stem")] if same in def_names else []
    out += [(d, "diary") for d in p.named if d != same]
    return out or ([(p.def_file, "stem prefix")] if p.def_file else [])
