"""Cross-references inside the cfg files of the source pages.

A def file's ``inputs=pool1a,conv2`` links each name to its ``[section]`` in the same file; its
``type=conv`` and ``neuron=relu`` (``neuron=tanh[a,b]``) values link to the class the release's
C++ builds for them (the ``type == "conv"`` branch and the ``new ConvLayer`` it makes; the
class's definition from Universal Ctags, else the branch itself). A def file and its params files
link each other, section to section, and the page's header names both and the experiment page
(``experiments/<stem>``) of a ``layers/`` params file. The pairs come from the compat table
(``python -m port.compat --json``, ``archive_compat_table``): the one list of what the port
parses with what.

A ``type=`` value with no class found is a link to its identifier panel (``#i:type=pool``, set by
archive-idents.js), as the code's names are. The line's text is unchanged (the links wrap the
names only); the markup follows the highlighter's classes (``na`` key, ``o`` ``=``, ``s`` value,
``k`` section header).

Not a port: the project's own site machinery.
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from archive.sphinxext.highlight import split_lines, token_html
from archive.sphinxext.idents import _BRANCH, _NEW, C_SUFFIXES, Tag, cfg_outline
from archive.sphinxext.markup import HTML, html, join
from archive.sphinxext.model import Site, page_of_source, relative

_KEY_LINE = re.compile(r"^(\s*)(inputs|type|neuron)(\s*=\s*)(.*?)(\s*)$")
_SECTION_LINE = re.compile(r"^(\s*)\[([^\]]+)\](\s*)$")
_NAME = re.compile(r"[A-Za-z_][\w.-]*")


@dataclass
class CfgLinks:
    """What the cfg pages link to, for the whole site."""
    classes: dict[str, dict[str, tuple[str, int, str]]] = field(default_factory=dict)  # release → value → (path, line, class)
    params_of: dict[tuple[str, str], list[str]] = field(default_factory=dict)   # (release, def) → params files
    defs_of: dict[tuple[str, str], list[str]] = field(default_factory=dict)     # (release, params) → def files
    experiments: set[str] = field(default_factory=set)                          # stems with a page


def type_classes(site: Site, release: str, tags: dict[tuple[str, str], list[Tag]] | None
                 ) -> dict[str, tuple[str, int, str]]:
    """cfg value → (path, line, class) in ``release``: the class that a ``type == "value"``
    branch of its C++ creates (``new Class`` within two lines), at the class's definition where
    Universal Ctags found one, else at the branch."""
    branches: dict[str, tuple[str, int, str]] = {}
    class_at: dict[str, tuple[str, int]] = {}
    for e in site.files(release):
        if not e.path.endswith(C_SUFFIXES) or site.is_binary(release, e.path):
            continue
        for t in (tags or {}).get((release, e.path), []):
            if t.kind in ("class", "struct") and t.name not in class_at:
                class_at[t.name] = (e.path, t.line)
        text = site.text(release, e.path)
        if not text or "==" not in text:
            continue
        lines = split_lines(text)
        for n, line in enumerate(lines, 1):
            for m in _BRANCH.finditer(line):
                cls = _NEW.search(" ".join(lines[n - 1:n + 2]))
                if cls and m[1] not in branches:
                    branches[m[1]] = (e.path, n, cls[1])
    return {v: (*class_at.get(cls, (path, n)), cls) for v, (path, n, cls) in branches.items()}


def load(site: Site, srcdir: Path, table: str, tags, experiments: set[str] | None = None) -> CfgLinks:  # noqa: ANN001
    out = CfgLinks(experiments=set(experiments or ()))
    for release in site.order:
        if any(".cfg" in PurePosixPath(e.path).name for e in site.files(release)):
            out.classes[release] = type_classes(site, release, tags)
    path = srcdir / table if table else None
    if path is not None and path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        rel = data.get("release")
        defs_of: dict[tuple[str, str], list[str]] = defaultdict(list)
        for r in data.get("rows", []):
            out.params_of[(rel, r["cfg"])] = list(r.get("params", []))
            for p in r.get("params", []):
                defs_of[(rel, p)].append(r["cfg"])
        out.defs_of = dict(defs_of)
    return out


def experiment_of(params: str) -> str | None:
    """``layers/layer-params-145.cfg`` → ``145`` (the experiment pages cover ``layers/``)."""
    p = PurePosixPath(params)
    if p.parent.as_posix() != "layers" or not p.name.startswith("layer-params-") or not p.name.endswith(".cfg"):
        return None
    return p.name[len("layer-params-"):-len(".cfg")]


def _sections(site: Site, release: str, path: str) -> dict[str, int]:
    text = site.text(release, path)
    if text is None:
        return {}
    return {name: first for name, _, _, first, _ in cfg_outline(split_lines(text))}


def header(site: Site, links: CfgLinks, release: str, path: str) -> HTML:
    """The def file ↔ params files ↔ experiment page line of a cfg page ("" when none)."""
    page = page_of_source(release, path)
    a = lambda p: html('<a href="{}"><code>{}</code></a>', relative(page, page_of_source(release, p)), p)  # noqa: E731
    parts = []
    params = links.params_of.get((release, path))
    if params is not None:
        parts.append(html("Def file; its params files: {}", join((a(p) for p in params), ", ") if params else "none"))
    defs = links.defs_of.get((release, path))
    if defs:
        parts.append(html("Params file of the def file{} {}", "s" if len(defs) > 1 else "", join((a(d) for d in defs), ", ")))
    stems = [s for p in ([path] if defs else params or []) if (s := experiment_of(p)) and s in links.experiments]
    if stems:
        parts.append(html("experiment {}", join((html('<a href="{}">#{}</a>', relative(page, "experiments/" + s), s)
                                                 for s in stems), ", ")))
    if not parts:
        return HTML("")
    return html('<p class="cfg-links">{}.</p>', join(parts, " · "))


def link_lines(site: Site, links: CfgLinks, release: str, path: str, text: str, lines_html: list[HTML]
               ) -> list[HTML]:
    """``lines_html`` with the cfg's cross-references made links (other lines unchanged)."""
    page = page_of_source(release, path)
    lines = split_lines(text)
    own = {name: first for name, _, _, first, _ in cfg_outline(lines)}
    classes = links.classes.get(release, {})
    other = None  # the paired file: a params file's def file, a def file's first params file
    if links.defs_of.get((release, path)):
        other = links.defs_of[(release, path)][0]
    elif links.params_of.get((release, path)):
        other = links.params_of[(release, path)][0]
    other_sections = _sections(site, release, other) if other else {}
    out = list(lines_html)

    def name_link(name: str, key: str) -> HTML:
        if key == "inputs" and name in own:
            return html('<a class="cfgx" href="#L{}" title="[{}], line {}">{}</a>', own[name], name, own[name], name)
        base = name.split("[", 1)[0]
        if key in ("type", "neuron") and base in classes:
            p, n, cls = classes[base]
            rest = name[len(base):]
            return html('<a class="cfgx" href="{}#L{}" title="{}">{}</a>{}', relative(page, page_of_source(release, p)),
                        n, cls, base, rest)
        if key == "type" and name.isascii() and _NAME.fullmatch(name):  # no class found: its panel,
            return html("<a href>{}</a>", name)  # #i:type=<name> (archive-idents.js), like the code's names
        return html("{}", name)

    for i, line in enumerate(lines):
        if i >= len(out) or line.lstrip().startswith(("#", ";")):
            continue
        m = _KEY_LINE.match(line)
        if m:
            lead, key, eq, value, tail = m.groups()
            if key == "inputs":
                pieces = re.split(r"(\s*,\s*)", value)
                val = join(name_link(p, key) if k % 2 == 0 else html("{}", p) for k, p in enumerate(pieces))
            else:
                val = name_link(value, key)
            if val != html("{}", value):
                out[i] = html('{}{}<span class="o">{}</span><span class="s">{}</span>{}',
                              lead, token_html("na", key), eq, val, tail)
            continue
        m = _SECTION_LINE.match(line)
        if m and other and m[2] in other_sections:
            target = relative(page, page_of_source(release, other))
            out[i] = html('{}<span class="k">[<a class="cfgx" href="{}#L{}" title="[{}] in {}">{}</a>]</span>{}',
                          m[1], target, other_sections[m[2]], m[2], other, m[2], m[3])
    return out
