"""Pygments highlighting, one HTML string per line, with the identifiers it saw.

This module turns a file's text into a list of lines of HTML (Pygments' short CSS classes,
``<span class="k">``; no inline styles), exactly as stored: no tab expansion, no newline added
at the end, no whitespace stripped. If the lexer's tokens do not reproduce the text byte for
byte, the file is shown as plain text instead. It also collects the ``Name`` tokens, which the
identifier search (:mod:`search`) indexes. It is not a Sphinx writer: the pages put these
lines into their own markup.

Highlighting the three releases takes most of a full build, so results are cached on disk,
keyed by the text's SHA-256, the lexer and :data:`VERSION`. The same :class:`Cache` is the build's
only cache: it also keeps derived values (diffs, the experiments pages: :meth:`Cache.memo`) and
what the previous build wrote (:meth:`Cache.recorded`, :meth:`Cache.record`).
"""
from __future__ import annotations

import hashlib
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pygments.lexer import Lexer
from pygments.lexers import (BashLexer, CppLexer, CudaLexer, HtmlLexer, IniLexer, MakefileLexer,
                             Python2Lexer, PythonLexer, TextLexer)
from pygments.token import STANDARD_TYPES, Name, Text, Token, _TokenType

from archive.sphinxext.markup import HTML, esc, html, join
from port.util import atomic_write_bytes

VERSION = 9  # bump when any cached or generated HTML changes in a way its inputs would not show
_OPTIONS = dict(stripnl=False, stripall=False, ensurenl=False, tabsize=0)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_DEFINING = (Name.Function, Name.Class)
# Pygments' short classes of names: such a run is a link, ``<a class="nf" href>fpropActs</a>``,
# the same list as archive-idents.js's NAME; a plain name (``n``, two names in three) drops its
# class, ``<a href>Layer</a>`` (a link in code with an empty or ``#i:`` href is an identifier, and
# ``.highlight .n`` has the code's own colour). The href is empty (the page itself) and the script
# sets the identifier's URL (``#i:Layer``) the moment it is pointed at or focused: a link, so it
# takes the keyboard focus and opens in a new tab, and it weighs less than the ``<span>`` it was.
IDENT_CLASSES = frozenset("n na nb bp nc no nd ni ne nf fm py nl nn nx nt nv vc vg vi vm".split())
_LINKABLE = re.compile(r"[A-Za-z_]\w*(?:(?:::|\.)[A-Za-z_]\w*)*\Z", re.ASCII)  # Layer::fpropActs, self.x
CUDA_SUFFIXES = (".cu", ".cuh")
C_SUFFIXES = (".cpp", ".cc", ".c", ".h", ".hpp", ".cutemp")


def lexer_for(path: str, port: bool = False) -> Lexer:
    """The lexer of a release (or port) file, chosen from its name.

    CUDA for ``.cu``/``.cuh``, C++ for C-family files, Python (2 for the releases, 3 for the
    port), INI for ``.cfg``, make for Makefiles, shell for ``.sh``, HTML; plain text otherwise.
    """
    name = PurePosixPath(path).name
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in CUDA_SUFFIXES:
        return CudaLexer(**_OPTIONS)
    if suffix in C_SUFFIXES:
        return CppLexer(**_OPTIONS)
    if suffix == ".py":
        return (PythonLexer if port else Python2Lexer)(**_OPTIONS)
    if suffix in (".cfg", ".save") and ".cfg" in name:
        return IniLexer(**_OPTIONS)
    if name.startswith("Makefile") or suffix == ".mk":
        return MakefileLexer(**_OPTIONS)
    if suffix == ".sh":
        return BashLexer(**_OPTIONS)
    if suffix == ".html":
        return HtmlLexer(**_OPTIONS)
    return TextLexer(**_OPTIONS)


def _css_class(ttype: _TokenType) -> str:
    """Pygments' short class; none for plain text and whitespace (kept lean)."""
    if ttype in Text:
        return ""
    while ttype not in STANDARD_TYPES:
        ttype = ttype.parent
    return STANDARD_TYPES[ttype]


@dataclass
class Highlighted:
    """A file as lines of HTML, and the identifiers in it."""
    lexer: str
    lines: list[HTML]                     # HTML of each line, without its newline
    final_newline: bool
    names: list[tuple[str, int, bool]] = field(default_factory=list)  # (name, line, defining)


def split_lines(text: str) -> list[str]:
    """The lines of ``text`` as the manifests count them (a tail without newline is a line)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def token_html(cls: str, text: str) -> HTML:
    """One run of a line: plain text, a ``<span class>``, or for a name (:data:`IDENT_CLASSES`,
    an identifier or a qualified one) an ``<a class href>`` (``<a href>`` for ``n``) that the
    identifier script leads to its definitions and references."""
    if not cls:
        return esc(text)
    if cls in IDENT_CLASSES and _LINKABLE.match(text):
        return html('<a href>{}</a>', text) if cls == "n" else html('<a class="{}" href>{}</a>', cls, text)
    return html('<span class="{}">{}</span>', cls, text)


def highlight(text: str, path: str, port: bool = False) -> Highlighted:
    """Highlight ``text`` (the content of ``path``) line by line."""
    lexer = lexer_for(path, port)
    tokens = list(lexer.get_tokens(text))
    if "".join(v for _, v in tokens) != text:  # the lexer changed the text: show it plain
        lexer = TextLexer(**_OPTIONS)
        tokens = [(Token.Text, text)]
    lines: list[HTML] = []
    names: list[tuple[str, int, bool]] = []
    runs: list[list[str]] = []  # [class, text] of the current line; same-class tokens merged

    def close_line() -> None:
        lines.append(join(token_html(c, t) for c, t in runs))
        runs.clear()

    for ttype, value in tokens:
        cls = _css_class(ttype)
        if ttype in Name:  # "Layer::fpropActs" defines fpropActs and uses Layer
            parts = re.split(r"::|\.", value)
            defining = any(ttype in d for d in _DEFINING)
            for i, part in enumerate(parts):
                if _IDENT.match(part):
                    names.append((part, len(lines) + 1, defining and i == len(parts) - 1))
        for i, part in enumerate(value.split("\n")):
            if i:
                close_line()
            if part:
                if runs and runs[-1][0] == cls:
                    runs[-1][1] += part
                else:
                    runs.append([cls, part])
    if runs or (text and not text.endswith("\n")):
        close_line()
    return Highlighted(lexer.aliases[0] if lexer.aliases else lexer.name, lines,
                       text.endswith("\n"), names)


class Cache:
    """The build cache on disk, one pickle for the whole site: highlighted files keyed by content
    hash, memoized values keyed by their inputs, and records of the previous build; every key
    carries :data:`VERSION`, and an entry this build does not use is dropped when it is saved."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.entries: dict[str, object] = {}
        self.used: set[str] = set()
        self.dirty = False
        try:
            with open(self.path, "rb") as f:
                self.entries = pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
            self.entries = {}

    def get(self, text: str, path: str, port: bool = False) -> Highlighted:
        lexer = type(lexer_for(path, port)).__name__
        key = f"{VERSION}:{lexer}:{hashlib.sha256(text.encode('utf-8', 'surrogateescape')).hexdigest()}"
        self.used.add(key)
        hit = self.entries.get(key)
        if hit is None:
            hit = self.entries[key] = highlight(text, path, port)
            self.dirty = True
        return hit

    def memo(self, key: str, compute):  # noqa: ANN001, ANN201
        """Any other derived value (e.g. a diff), cached under ``key`` like highlighted files."""
        key = f"{VERSION}:memo:{key}"
        self.used.add(key)
        if key not in self.entries:
            self.entries[key] = compute()
            self.dirty = True
        return self.entries[key]

    def recorded(self, name: str, default=None):  # noqa: ANN001, ANN201
        """What the previous build :meth:`record` ed under ``name`` (``default`` if nothing)."""
        return self.entries.get(f"{VERSION}:record:{name}", default)

    def record(self, name: str, value) -> None:  # noqa: ANN001
        """Keep ``value`` for the next build's :meth:`recorded`."""
        key = f"{VERSION}:record:{name}"
        self.used.add(key)
        if self.entries.get(key) != value:
            self.entries[key] = value
            self.dirty = True

    def save(self) -> None:
        """Write the cache atomically, keeping only the entries used by this build."""
        if not self.dirty and set(self.entries) == self.used:
            return
        self.entries = {k: v for k, v in self.entries.items() if k in self.used}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path, lambda f: pickle.dump(self.entries, f, pickle.HIGHEST_PROTOCOL))
