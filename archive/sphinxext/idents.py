"""Identifiers as links, like Bootlin Elixir, offline: where each name is defined and every place
it is used, across the three releases and the port.

Definitions come from Universal Ctags (Debian's ``universal-ctags``; C++ parser for ``.cu``,
``.cuh``, ``.cpp``, ``.h``, Python parser for ``.py``): functions and kernels with their end
line, classes and structs, macros, members, module-level names. When ctags is not installed the
definitions fall back to the highlighter's function and class tokens, and the pages say so.
References are the highlighter's ``Name`` tokens (:mod:`highlight`), one per line, each with the
line's text as context. A cfg layer type (``type=cmrnorm``) is an identifier too, in a namespace
of its own (the index names it ``type=cmrnorm``, so ``type=conv`` does not gather a C++ variable
``conv``): it is used in every cfg that names it and "defined" by the registry entries and ``type == "…"`` branches that
read it, and the layer or parser class they name.

The index is written at build time as small scripts under ``_ids/`` (they load from ``file://``
too): ``_ids/files.js`` (every indexed file: label and page) and ``_ids/<k>.js``, one of
:data:`SHARDS` shards chosen by a hash of the name, so a reader's click loads one shard of a few
hundred kB, and nothing is loaded until a reader clicks an identifier (``archive-idents.js``).
``identifiers.js`` (for the search page) holds only the names with their counts.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from archive.sphinxext.highlight import Cache, split_lines
from archive.sphinxext.model import Site, page_of_port, page_of_source

SHARDS = 128
CONTEXT = 110            # characters of context kept per reference line
MAX_REFS = 4000          # references kept per identifier (the count is always exact)
CTAGS_KINDS = {"function", "class", "struct", "macro", "member", "method", "enum", "typedef",
               "union", "variable", "namespace", "enumerator"}
CFG_TYPE = "type="       # the index's name of a cfg layer type: "type=conv" (archive-idents.js asks for it)
C_SUFFIXES = (".cu", ".cuh", ".cpp", ".cc", ".c", ".h", ".hpp", ".cutemp")
_TYPE_LINE = re.compile(r"^\s*type\s*=\s*([A-Za-z_][\w.-]*)\s*$")
_REGISTRY = re.compile(r"""['"]([a-z][\w.-]*)['"]\s*:\s*(?:lambda\s*:\s*)?([A-Z]\w*)""")
_BRANCH = re.compile(r"""\b(?:type|layerType)\s*==\s*"([a-z][\w.-]*)\"""")
_NEW = re.compile(r"\bnew\s+([A-Z]\w*)")


@dataclass(frozen=True)
class Tag:
    name: str
    line: int
    end: int
    kind: str
    scope: str


def ctags_available() -> bool:
    return shutil.which("ctags") is not None and "Universal Ctags" in _ctags_version()


def _ctags_version() -> str:
    try:
        return subprocess.run(["ctags", "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def ctags(base: Path, paths: list[str]) -> dict[str, list[Tag]]:
    """Universal Ctags' definitions in ``paths`` (relative to ``base``), by path."""
    wanted = [p for p in paths if p.endswith(C_SUFFIXES + (".py",))]
    if not wanted:
        return {}
    cmd = ["ctags", "--output-format=json", "--fields=+nKeZ", "-L", "-", "-f", "-",
           "--languages=C++,Python", "--map-C++=+.cu", "--map-C++=+.cuh", "--map-C++=+.cutemp",
           "--kinds-C++=+p", "--kinds-Python=-i"]
    out = subprocess.run(cmd, cwd=base, input="\n".join(wanted) + "\n", capture_output=True, text=True,
                         timeout=600, check=True).stdout
    tags: dict[str, list[Tag]] = defaultdict(list)
    for row in out.splitlines():
        try:
            t = json.loads(row)
        except ValueError:
            continue
        if t.get("_type") != "tag" or "line" not in t:
            continue
        kind = t.get("kind", "")
        if kind not in CTAGS_KINDS and kind != "prototype":
            continue
        tags[t["path"]].append(Tag(t["name"], int(t["line"]), int(t.get("end", t["line"])), kind,
                                   t.get("scope", "")))
    return tags


def shard_of(name: str) -> int:
    return zlib.crc32(name.encode("utf-8")) % SHARDS


def _ctx(line: str) -> str:
    text = line.strip()
    return text if len(text) <= CONTEXT else text[:CONTEXT - 1] + "…"


class Index:
    """Definitions and references of every identifier of the site."""

    def __init__(self) -> None:
        self.files: list[list[str]] = []       # [label, page url]
        self.defs: dict[str, list[list]] = defaultdict(list)   # name → [file, line, kind, end, scope]
        self.refs: dict[str, list[list]] = defaultdict(list)   # name → [file, line, context]
        self.source = "Universal Ctags"

    def add_file(self, label: str, url: str) -> int:
        self.files.append([label, url + ".html"])
        return len(self.files) - 1

    def shards(self) -> list[dict]:
        out: list[dict] = [{} for _ in range(SHARDS)]
        for name in sorted(set(self.defs) | set(self.refs)):
            d = sorted(self.defs.get(name, []), key=lambda x: (x[0], x[1]))
            r = sorted(self.refs.get(name, []), key=lambda x: (x[0], x[1]))
            out[shard_of(name)][name] = {"d": d, "r": r[:MAX_REFS], "n": len(r)}
        return out

    def names(self) -> dict[str, list[int]]:
        return {n: [len(self.refs.get(n, [])), len(self.defs.get(n, []))]
                for n in sorted(set(self.defs) | set(self.refs))}


Tags = dict[tuple[str, str], list[Tag]]  # (release or "port", path) → definitions


def all_tags(site: Site) -> Tags | None:
    """Universal Ctags' definitions in every release file and port module; None without ctags."""
    if not ctags_available():
        return None
    out: Tags = {}
    for release in site.order:
        present = [e.path for e in site.files(release) if site.data(release, e.path) is not None]
        for path, tags in ctags(site.original / release, present).items():
            out[(release, path)] = tags
    for path, tags in ctags(site.root, site.port_files).items():
        out[("port", path)] = tags
    return out


_KINDS_SHOWN = {"function": "function", "class": "class", "struct": "struct", "member": "method",
                "namespace": "namespace", "macro": "macro"}


def outline(tags: list[Tag], lines: list[str], python: bool) -> list[tuple[str, str, str, int, int]]:
    """(name, kind, scope, first, last) of the file's classes, functions, kernels and macros, in
    line order; a C++ ``__global__`` function is a kernel; Python members are methods, C++
    members (fields) are left out."""
    out = []
    for t in sorted(tags, key=lambda t: (t.line, t.name)):
        kind = _KINDS_SHOWN.get(t.kind)
        if kind is None or (t.kind == "member" and not python) or (t.kind == "macro" and t.end == t.line):
            continue
        head = " ".join(lines[max(0, t.line - 3):t.line])
        if kind == "function" and "__global__" in head:
            kind = "kernel"
        out.append((t.name, kind, t.scope, t.line, max(t.end, t.line)))
    return out


def cfg_outline(lines: list[str]) -> list[tuple[str, str, str, int, int]]:
    """The ``[section]`` lines of a cfg file, each with the lines up to the next section."""
    heads = [(n, m[1]) for n, line in enumerate(lines, 1) if (m := re.match(r"^\s*\[([^\]]+)\]", line))]
    out = []
    for i, (n, name) in enumerate(heads):
        last = (heads[i + 1][0] - 1) if i + 1 < len(heads) else len(lines)
        while last > n and not lines[last - 1].strip():
            last -= 1
        out.append((name, "section", "", n, last))
    return out


def build(site: Site, cache: Cache, use_ctags: bool | None = None, tags: Tags | None = None) -> Index:
    index = Index()
    use_ctags = ctags_available() if use_ctags is None else use_ctags
    if use_ctags and tags is None:
        tags = all_tags(site)
    tags = tags or {}
    if not use_ctags:
        index.source = "the highlighter (Universal Ctags is not installed)"
    registry: dict[str, list[tuple[int, int, str]]] = defaultdict(list)  # type → (file, line, class)
    class_defs: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)  # (group, class) → defs
    cfg_uses: list[tuple[str, int, int, str]] = []

    def index_file(fi: int, group: str, path: str, text: str, hl_names, tags: list[Tag] | None) -> None:
        lines = split_lines(text)
        seen: set[tuple[str, int]] = set()
        for name, line, defining in hl_names:
            if (name, line) in seen:
                continue
            seen.add((name, line))
            index.refs[name].append([fi, line, _ctx(lines[line - 1]) if line <= len(lines) else ""])
            if tags is None and defining:
                index.defs[name].append([fi, line, "definition", line, ""])
        for t in tags or []:
            kind = "declaration" if t.kind == "prototype" else t.kind
            index.defs[t.name].append([fi, t.line, kind, t.end, t.scope])
            if t.kind in ("class", "struct"):
                class_defs[(group, t.name)].append((fi, t.line))
        if path.endswith(".cfg") or ".cfg" in PurePosixPath(path).name:
            for n, line in enumerate(lines, 1):
                m = _TYPE_LINE.match(line)
                if m:
                    cfg_uses.append((m[1], fi, n, _ctx(line)))
        elif path.endswith((".py",) + C_SUFFIXES):
            for n, line in enumerate(lines, 1):
                for m in _REGISTRY.finditer(line):
                    registry[m[1]].append((fi, n, m[2]))
                for m in _BRANCH.finditer(line):
                    follow = " ".join(lines[n - 1:n + 2])
                    cls = _NEW.search(follow)
                    registry[m[1]].append((fi, n, cls[1] if cls else ""))

    for release in site.order:
        present = [e for e in site.files(release) if site.text(release, e.path) is not None
                   and not site.is_binary(release, e.path)]
        for e in present:
            text = site.text(release, e.path) or ""
            fi = index.add_file(f"{release}/{e.path}", page_of_source(release, e.path))
            index_file(fi, release, e.path, text, cache.get(text, e.path).names,
                       tags.get((release, e.path), []) if use_ctags else None)
    for pf in site.port_files:
        f = site.root / pf
        if not f.is_file():
            continue
        text = f.read_text(encoding="utf-8", errors="replace")
        fi = index.add_file(pf, page_of_port(pf))
        index_file(fi, "port", pf, text, cache.get(text, pf, port=True).names,
                   tags.get(("port", pf), []) if use_ctags else None)

    # cfg layer types: used by the cfgs, read by the registries and the classes they name
    group_of = {}
    for fi, (label, _) in enumerate(index.files):
        group_of[fi] = "port" if label.startswith("port/") else label.split("/", 1)[0]
    # the cfg's names are not the code's: the type conv is "type=conv", apart from a C++ variable conv
    used_types = {t for t, *_ in cfg_uses}
    for typ, fi, n, ctx in cfg_uses:
        index.refs[CFG_TYPE + typ].append([fi, n, ctx])
    for typ in used_types:
        for fi, n, cls in registry.get(typ, []):
            index.defs[CFG_TYPE + typ].append([fi, n, "reads type", n, cls])
            for cfi, cline in class_defs.get((group_of[fi], cls), []):
                index.defs[CFG_TYPE + typ].append([cfi, cline, "layer class", cline, cls])
    return index


def key(site: Site) -> str:
    """A hash of everything the index is computed from (to skip rebuilding it)."""
    h = hashlib.sha256(f"{SHARDS}:{CONTEXT}:{MAX_REFS}:{ctags_available()}:{Path(__file__).read_bytes()!r}".encode())
    for release in site.order:
        for e in site.files(release):
            h.update(f"{release}/{e.path}:{e.sha256}:{site.data(release, e.path) is not None}\n".encode())
    for pf in site.port_files:
        f = site.root / pf
        h.update(pf.encode() + (hashlib.sha256(f.read_bytes()).digest() if f.is_file() else b"-"))
    return h.hexdigest()


def write(index: Index, outdir: Path) -> None:
    """``_ids/files.js``, ``_ids/<k>.js`` and ``identifiers.js`` (names and counts)."""
    d = outdir / "_ids"
    d.mkdir(parents=True, exist_ok=True)
    dump = lambda obj: json.dumps(obj, separators=(",", ":"), ensure_ascii=False)  # noqa: E731
    (d / "files.js").write_text(f"window.ARCHIVE_ID_FILES={dump({'files': index.files, 'source': index.source})};\n",
                                encoding="utf-8")
    for k, shard in enumerate(index.shards()):
        (d / f"{k}.js").write_text(f"window.ARCHIVE_ID_SHARD({k},{dump(shard)});\n", encoding="utf-8")
    (outdir / "identifiers.js").write_text(
        f"window.ARCHIVE_IDENTIFIERS={dump({'shards': SHARDS, 'names': index.names()})};\n", encoding="utf-8")
