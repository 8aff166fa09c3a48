"""The one parser of cross-references from the port to the releases.

A ported function or class names the original lines it ports with docstring (or comment) lines
of exactly this form::

    Ports: alexnet-2012/src/layer.cu:823-842 ConvLayer::fpropActs

that is ``Ports: <release>/<path>:<first>-<last> <Symbol>`` (``:<line>`` for a single line).
A deliberate difference from the original is marked by a line starting ``DIVERGES:`` followed
by the reason; a check the port adds where the original had none (a hostile or mistaken input
refused with one line where the original crashed, asserted in a kernel or went on) by a line
starting ``Port-only:``. Both are a :class:`Divergence` (its ``kind`` says which). The tests and
the Sphinx site both read these through :func:`scan`, and both check them through :func:`check`.
"""
from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from archive import ORIGINAL, ROOT
from archive.manifest import Manifest

PORTS_RE = re.compile(
    r"Ports:\s+(?P<release>[A-Za-z0-9_.-]+)/(?P<path>[^\s:]+):(?P<first>\d+)(?:-(?P<last>\d+))?"
    r"(?:\s+(?P<symbol>\S.*?))?\s*$")
DIVERGES_RE = re.compile(r"(?P<kind>DIVERGES|Port-only):\s*(?P<reason>.*)$")
MARKERS = ("DIVERGES:", "Port-only:")
QUOTES = ('"""', "'''")


@dataclass(frozen=True)
class Owner:
    """The innermost function or class around a line (or the module itself)."""
    qualname: str   # "ConvLayer.fprop_acts", or "<module>"
    first: int      # its first line (decorators included) in the port file
    last: int       # its last line


@dataclass(frozen=True)
class PortsRef:
    port_file: str  # repository-relative path, e.g. "port/layers/weight.py"
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
    reason: str     # the whole reason, its lines joined by spaces
    last: int = 0   # the reason's last line (``line`` when it is one line)
    kind: str = "DIVERGES"  # or "Port-only": a check the port adds


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
        if any(k in line for k in MARKERS) and (m := DIVERGES_RE.search(line)):
            reason, last = _reason(lines, n, m)
            divs.append(Divergence(rel, n, _owner_of(owners, n, len(lines)), reason, last, m["kind"]))
    return refs, divs


def _reason(lines: list[str], n: int, m: re.Match) -> tuple[str, int]:
    """A ``DIVERGES:`` reason runs on over the following lines (as indented, or as comment
    lines after a ``#``) up to a blank line, another ``Ports:``/``DIVERGES:``/``Port-only:`` line or the end
    of the docstring or comment."""
    line = lines[n - 1]
    comment = "#" in line[:m.start()]
    indent = len(line) - len(line.lstrip())
    parts, last = [m["reason"].strip()], n
    while not parts[-1].endswith(QUOTES) and last < len(lines):
        nxt = lines[last]
        text = nxt.strip()
        if comment:
            if not text.startswith("#"):
                break
            text = text.lstrip("#").strip()
        elif len(nxt) - len(nxt.lstrip()) < indent:
            break
        if not text or text.startswith(QUOTES) or "Ports:" in text or any(k in text for k in MARKERS):
            break
        parts.append(text)
        last += 1
    return _unquote(" ".join(p for p in parts if p)), last


SCANNED_SUFFIXES = (".py", ".cu", ".cuh")


def port_files(paths: list[Path]) -> list[Path]:
    """The files :func:`scan` reads under ``paths`` (files or folders), in a stable order."""
    found: list[Path] = []
    for base in paths:
        if base.is_file():
            found.append(base)
        elif base.is_dir():
            found += sorted(p for p in base.rglob("*") if p.is_file() and p.suffix in SCANNED_SUFFIXES
                            and "__pycache__" not in p.parts)
    return found


def scan(paths: list[Path] | None = None, root: Path = ROOT) -> tuple[list[PortsRef], list[Divergence]]:
    """All references and divergences under ``paths`` (default: the ``port`` package)."""
    refs: list[PortsRef] = []
    divs: list[Divergence] = []
    for f in port_files(paths or [root / "port"]):
        r, d = scan_file(f, root)
        refs += r
        divs += d
    return refs, divs


def parse_target(text: str) -> tuple[str, str, int, int, str] | None:
    """``<release>/<path>:<first>-<last> [Symbol]`` (a ``Ports:`` line without its keyword, as
    annotations and ``{src}`` links write it) → (release, path, first, last, symbol)."""
    m = PORTS_RE.match("Ports: " + text.strip())
    if not m:
        return None
    first = int(m["first"])
    return m["release"], m["path"], first, int(m["last"]) if m["last"] else first, _unquote(m["symbol"] or "")


def symbol_names(symbol: str) -> list[str]:
    """The names to look for in the cited lines: ``ConvLayer::fpropActs`` → ``fpropActs``;
    ``LayerParser.parse`` → ``parse``; ``[conv1]`` → ``[conv1]``."""
    if not symbol:
        return []
    last = re.split(r"::|(?<=\w)\.(?=\w)", symbol.split()[0])[-1]
    return [last] if last else []


def target_problem(manifests: dict[str, Manifest], release: str, path: str, first: int, last: int,
                   symbol: str, read_lines: Callable[[], list[str] | None]) -> str | None:
    """What is wrong with one cited range, or None. The rule for ``Ports:`` lines, annotations
    and links alike: a known release and path, a range inside the file, and, when the release is
    fetched (``read_lines()`` returns its lines, else None), the symbol's name inside the range."""
    man = manifests.get(release)
    if man is None:
        return f"unknown release {release!r} (known: {', '.join(manifests)})"
    entry = man.files.get(path)
    if entry is None:
        return f"{release} has no file {path!r}"
    if not 1 <= first <= last <= entry.lines:
        return f"lines {first}-{last} lie outside {release}/{path} ({entry.lines} lines)"
    lines = read_lines()
    if lines is not None:
        span = "\n".join(lines[first - 1:last])
        for name in symbol_names(symbol):
            if name not in span:
                return f"{symbol!r} does not appear in {release}/{path}:{first}-{last}"
    return None


def check(refs: list[PortsRef], manifests: dict[str, Manifest],
          original: Path = ORIGINAL) -> list[str]:
    """Problems with the references, each as ``port_file:line: message`` (:func:`target_problem`)."""
    texts: dict[tuple[str, str], list[str] | None] = {}

    def reader(release: str, path: str) -> Callable[[], list[str] | None]:
        def read() -> list[str] | None:
            if (release, path) not in texts:
                f = original / release / path
                texts[release, path] = (f.read_text(encoding="utf-8", errors="replace").splitlines()
                                        if f.is_file() else None)
            return texts[release, path]
        return read

    problems = []
    for r in refs:
        msg = target_problem(manifests, r.release, r.path, r.first, r.last, r.symbol,
                             reader(r.release, r.path))
        if msg:
            problems.append(f"{r.port_file}:{r.line}: {msg}")
    return problems
