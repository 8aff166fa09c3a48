"""The one parser of cross-references from the port to the releases.

A ported function or class names the original lines it ports with docstring (or comment) lines
of exactly this form::

    Ports: alexnet-2012/src/layer.cu:823-842 ConvLayer::fpropActs

that is ``Ports: <release>/<path>:<first>-<last> <Symbol>`` (``:<line>`` for a single line).
A deliberate difference from the original is marked by a line starting ``DIVERGES:`` followed
by the reason. The tests and the Sphinx site both read these through :func:`scan`, and both
check them through :func:`check`.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from archive import ORIGINAL, ROOT
from archive.manifest import Manifest

PORTS_RE = re.compile(
    r"Ports:\s+(?P<release>[A-Za-z0-9_.-]+)/(?P<path>[^\s:]+):(?P<first>\d+)(?:-(?P<last>\d+))?"
    r"(?:\s+(?P<symbol>\S.*?))?\s*$")
DIVERGES_RE = re.compile(r"DIVERGES:\s*(?P<reason>.*)$")


@dataclass(frozen=True)
class Owner:
    """The innermost function or class around a line (or the module itself)."""
    qualname: str   # "ConvLayer.fprop_acts", or "<module>"
    first: int      # its first line (decorators included) in the port file
    last: int       # its last line


@dataclass(frozen=True)
class PortsRef:
    port_file: str  # repository-relative path, e.g. "port/layers/conv.py"
    line: int       # the line of the ``Ports:`` text in port_file
    owner: Owner
    release: str
    path: str       # path inside the release
    first: int
    last: int
    symbol: str     # "" when the line names none

    @property
    def target(self) -> str:
        return f"{self.release}/{self.path}:{self.first}-{self.last}"


@dataclass(frozen=True)
class Divergence:
    port_file: str
    line: int
    owner: Owner
    reason: str     # the first line of the reason


def _owners(source: str) -> list[Owner]:
    """Every function and class of a Python source, with qualified names and line spans."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found: list[Owner] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                first = min([child.lineno] + [d.lineno for d in child.decorator_list])
                qual = f"{prefix}{child.name}"
                found.append(Owner(qual, first, child.end_lineno or child.lineno))
                walk(child, qual + ".")
            else:
                walk(child, prefix)

    walk(tree, "")
    return found


def _owner_of(owners: list[Owner], line: int, nlines: int) -> Owner:
    around = [o for o in owners if o.first <= line <= o.last]
    if not around:
        return Owner("<module>", 1, nlines)
    return min(around, key=lambda o: o.last - o.first)


def _unquote(text: str) -> str:
    """Drop the closing quotes that a one-line docstring leaves after the symbol or reason."""
    text = text.strip()
    for q in ('"""', "'''"):
        if text.endswith(q):
            text = text[: -len(q)].rstrip()
    return text


def scan_file(path: Path, root: Path = ROOT) -> tuple[list[PortsRef], list[Divergence]]:
    """The ``Ports:`` references and ``DIVERGES:`` marks of one file (Python or any text)."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    owners = _owners(text) if path.suffix == ".py" else []
    rel = path.resolve().relative_to(root.resolve()).as_posix()
    refs: list[PortsRef] = []
    divs: list[Divergence] = []
    for n, line in enumerate(lines, 1):
        if "Ports:" in line and (m := PORTS_RE.search(line)):
            first = int(m["first"])
            last = int(m["last"]) if m["last"] else first
            refs.append(PortsRef(rel, n, _owner_of(owners, n, len(lines)), m["release"],
                                 m["path"], first, last, _unquote(m["symbol"] or "")))
        if "DIVERGES:" in line and (m := DIVERGES_RE.search(line)):
            divs.append(Divergence(rel, n, _owner_of(owners, n, len(lines)),
                                   _unquote(m["reason"])))
    return refs, divs


SCANNED_SUFFIXES = (".py", ".cu", ".cuh")


def scan(paths: list[Path] | None = None, root: Path = ROOT) -> tuple[list[PortsRef], list[Divergence]]:
    """All references and divergences under ``paths`` (default: the ``port`` package)."""
    paths = paths or [root / "port"]
    refs: list[PortsRef] = []
    divs: list[Divergence] = []
    for base in paths:
        files = [base] if base.is_file() else sorted(
            p for p in base.rglob("*") if p.suffix in SCANNED_SUFFIXES and "__pycache__" not in p.parts)
        for f in files:
            r, d = scan_file(f, root)
            refs += r
            divs += d
    return refs, divs


def symbol_names(symbol: str) -> list[str]:
    """The names to look for in the cited lines: ``ConvLayer::fpropActs`` → ``fpropActs``;
    ``LayerParser.parse`` → ``parse``; ``[conv1]`` → ``[conv1]``."""
    if not symbol:
        return []
    last = re.split(r"::|(?<=\w)\.(?=\w)", symbol.split()[0])[-1]
    return [last] if last else []


def check(refs: list[PortsRef], manifests: dict[str, Manifest],
          original: Path = ORIGINAL) -> list[str]:
    """Problems with the references, each as ``port_file:line: message``.

    Always checked against the manifests: known release, known path, range inside the file.
    Checked when the release is present under ``original``: the named symbol lies in the range.
    """
    problems: list[str] = []
    texts: dict[tuple[str, str], list[str] | None] = {}
    for r in refs:
        where = f"{r.port_file}:{r.line}"
        man = manifests.get(r.release)
        if man is None:
            problems.append(f"{where}: unknown release {r.release!r} (known: {', '.join(manifests)})")
            continue
        entry = man.files.get(r.path)
        if entry is None:
            problems.append(f"{where}: {r.release} has no file {r.path!r}")
            continue
        if not 1 <= r.first <= r.last <= entry.lines:
            problems.append(f"{where}: lines {r.first}-{r.last} lie outside {r.release}/{r.path} "
                            f"({entry.lines} lines)")
            continue
        key = (r.release, r.path)
        if key not in texts:
            f = original / r.release / r.path
            texts[key] = f.read_text(encoding="utf-8", errors="replace").splitlines() if f.is_file() else None
        lines = texts[key]
        if lines is None:
            continue
        span = "\n".join(lines[r.first - 1:r.last])
        for name in symbol_names(r.symbol):
            if name not in span:
                problems.append(f"{where}: {r.symbol!r} does not appear in {r.target}")
    return problems
