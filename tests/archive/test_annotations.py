"""The annotations under docs/annotations and the {src} references of the docs: every target
parses, lies inside its file (manifest line counts) and, with the release fetched, contains its
symbol. The same checks as the build's, without building the site.

The documents are read by the project's own parsers: MyST's with conf.py's extensions (so a
``:::{annotation}`` colon fence counts as the build counts it) and :func:`archive.xref.parse_target`.
"""
from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from markdown_it.renderer import RendererHTML
from myst_parser.config.main import MdParserConfig
from myst_parser.parsers.mdit import create_md_parser

from archive import ORIGINAL as ORIGINAL_DIR
from archive import ROOT, xref
from archive import manifest as m

DOCS = ROOT / "docs"
ANNOTATIONS = DOCS / "annotations"
CONF = runpy.run_path(str(ROOT / "conf.py"))
MD = create_md_parser(MdParserConfig(enable_extensions=set(CONF.get("myst_enable_extensions", ()))),
                      RendererHTML)


def _directives_and_roles(text: str, offset: int = 0):
    """(line, directive name, argument) and (line, role name, content) of a MyST text, directive
    bodies included (MyST parses them as MyST too)."""
    found_dirs, found_roles = [], []
    line = offset + 1
    for t in MD.parse(text):
        if t.map:
            line = offset + t.map[0] + 1
        if t.type in ("fence", "colon_fence") and t.info.startswith("{") and "}" in t.info:
            name, _, arg = t.info[1:].partition("}")
            found_dirs.append((line, name, arg.strip()))
            d, r = _directives_and_roles(t.content, offset + t.map[0] + 1)
            found_dirs += d
            found_roles += r
        for c in t.children or []:
            if c.type == "myst_role":
                found_roles.append((line, c.meta.get("name"), c.content))
    return found_dirs, found_roles


def annotation_args(path: Path) -> list[tuple[int, str]]:
    dirs, _ = _directives_and_roles(path.read_text(encoding="utf-8"))
    return [(n, arg) for n, name, arg in dirs if name == "annotation"]


def src_targets(path: Path) -> list[tuple[int, str]]:
    _, roles = _directives_and_roles(path.read_text(encoding="utf-8"))
    out = []
    for n, name, body in roles:
        if name != "src":
            continue
        if body.endswith(">") and "<" in body:
            body = body[:-1].rsplit("<", 1)[1]
        out.append((n, body.strip()))
    return out


def to_ref(source: Path, line: int, arg: str) -> xref.PortsRef:
    parsed = xref.parse_target(arg)
    assert parsed, f"{source}:{line}: cannot parse {arg!r} as <release>/<path>:<first>-<last> [Symbol]"
    release, path, first, last, symbol = parsed
    return xref.PortsRef(str(source.relative_to(ROOT)), line, None, release, path, first, last, symbol)


ANNOTATION_FILES = sorted(ANNOTATIONS.rglob("*.md"))
DOC_FILES = sorted(DOCS.rglob("*.md"))


def all_annotation_refs() -> list[xref.PortsRef]:
    return [to_ref(p, n, a) for p in ANNOTATION_FILES for n, a in annotation_args(p)]


def all_src_refs() -> list[xref.PortsRef]:
    return [to_ref(p, n, a) for p in DOC_FILES for n, a in src_targets(p)]


def test_annotations_exist_and_parse():
    refs = all_annotation_refs()
    assert len(refs) >= 40
    assert all(r.symbol for r in refs), "every annotation names a symbol to anchor it"
    # one annotation file per release file, at docs/annotations/<release>/<path>.md
    for p in ANNOTATION_FILES:
        rel = p.relative_to(ANNOTATIONS).as_posix().removesuffix(".md")
        for n, a in annotation_args(p):
            assert a.split(":", 1)[0] == rel, f"{p}:{n}: annotation of {a} lives in the file for {rel}"


def test_annotation_ranges_lie_in_the_manifests():
    problems = [x for x in xref.check(all_annotation_refs(), m.load_all(), original=Path("/nonexistent"))]
    assert problems == []


def test_annotation_symbols_lie_in_their_ranges(alexnet_2012):
    assert xref.check(all_annotation_refs(), m.load_all()) == []


def test_annotations_do_not_overlap():
    by_file: dict[str, list[xref.PortsRef]] = {}
    for r in all_annotation_refs():
        by_file.setdefault(f"{r.release}/{r.path}", []).append(r)
    for f, refs in by_file.items():
        refs.sort(key=lambda r: r.first)
        for a, b in zip(refs, refs[1:]):
            assert a.last < b.first, f"{f}: {a.target} and {b.target} overlap"


def test_src_references_of_the_docs(alexnet_2012):
    refs = all_src_refs()
    assert refs, "the docs cite source lines with {src}"
    assert xref.check(refs, m.load_all()) == []


@pytest.mark.parametrize("arg,ok", [
    ("alexnet-2012/src/layer.cu:823-842 ConvLayer::fpropActs", True),
    ("alexnet-2012/layers/layers-145.cfg:9 conv1a", True),
    ("alexnet-2012/src/layer.cu 823-842", False),
    ("layer.cu:823-842", False),
])
def test_target_syntax(arg, ok):
    assert (xref.parse_target(arg) is not None) == ok


def test_check_catches_a_wrong_range_and_symbol(alexnet_2012):
    """The checks used above can fail: a range past the end and a misplaced symbol."""
    man = m.load_all()
    n = man["alexnet-2012"].files["src/layer.cu"].lines
    bad = [to_ref(ROOT / "docs" / "x.md", 1, f"alexnet-2012/src/layer.cu:{n}-{n + 1} X"),
           to_ref(ROOT / "docs" / "x.md", 2, "alexnet-2012/src/layer.cu:1-5 ConvLayer::fpropActs")]
    problems = xref.check(bad, man)
    assert len(problems) == 2 and "outside" in problems[0] and "does not appear" in problems[1]


# --- a note stops before the next definition's leading comment ------------------------------------

_HEAD = ("template", "__global__", "__device__", "static ", "inline ")
_COMMENT = ("//", "/*", "*", "#")


def leading_comment(lines: list[str], line: int) -> int | None:
    """The first line of the comment block right above the definition on ``line`` (its
    ``template``/``__global__`` head lines skipped), or None when it has none."""
    i = line - 1
    while i >= 1 and lines[i - 1].strip().startswith(_HEAD):
        i -= 1
    start = None
    while i >= 1 and (lines[i - 1].strip().startswith(_COMMENT) or lines[i - 1].rstrip().endswith("*/")):
        start, i = i, i - 1
    return start


def notes_into_comments(refs: list[xref.PortsRef], texts, tags) -> list[str]:  # noqa: ANN001
    """Each note whose range starts before, and ends inside, the leading comment of the first
    definition (Universal Ctags) that starts after it: the comment belongs to that definition.
    ``texts(release, path)`` gives a file's lines, ``tags(release, path)`` its definitions' lines."""
    found = []
    for r in refs:
        lines = texts(r.release, r.path)
        if lines is None:
            continue
        after = [d for d in sorted(set(tags(r.release, r.path))) if d > r.last]
        if not after:
            continue
        c = leading_comment(lines, after[0])
        if c is not None and r.first < c <= r.last:
            found.append(f"{r.port_file}:{r.line}: {r.target} ends inside the comment (lines {c}-{after[0] - 1}) "
                         f"of the definition on line {after[0]}")
    return found


def test_leading_comment_and_the_check_on_made_up_lines():
    lines = ["int a() {", "}", "", "/*", " * b's comment", " */", "template <int X>", "void b() {", "}"]
    assert leading_comment(lines, 8) == 4 and leading_comment(lines, 1) is None
    ref = to_ref(DOCS / "x.md", 1, "r/f.cu:1-5 a")
    got = notes_into_comments([ref], lambda r, p: lines, lambda r, p: [1, 8])
    assert len(got) == 1 and "lines 4-7" in got[0]
    ok = to_ref(DOCS / "x.md", 1, "r/f.cu:1-3 a")
    on_comment = to_ref(DOCS / "x.md", 1, "r/f.cu:4-6 b")  # a note about the comment itself
    assert notes_into_comments([ok, on_comment], lambda r, p: lines, lambda r, p: [1, 8]) == []


def test_no_note_ends_inside_the_next_definitions_comment(alexnet_2012):
    from archive.sphinxext import idents
    if not idents.ctags_available():
        pytest.skip("Universal Ctags is not installed (apt-get install universal-ctags)")
    refs = [r for r in all_annotation_refs() if not r.path.endswith(".cfg")]
    by_file: dict[tuple[str, str], list[int]] = {}
    for release, path in {(r.release, r.path) for r in refs}:
        if (ORIGINAL_DIR / release / path).is_file():
            got = idents.ctags(ORIGINAL_DIR / release, [path]).get(path, [])
            by_file[(release, path)] = [t.line for t in got]

    def texts(release: str, path: str) -> list[str] | None:
        p = ORIGINAL_DIR / release / path
        return p.read_text(encoding="utf-8", errors="replace").splitlines() if p.is_file() else None
    assert sum(len(v) for v in by_file.values()) > 500, "ctags found the definitions"
    assert notes_into_comments(refs, texts, lambda r, p: by_file.get((r, p), [])) == []


def test_every_row_of_the_nips_table_links_its_cfg_section():
    """docs/nips2012-network.md: each row of the layer table cites its lines of layers-145.cfg."""
    text = (DOCS / "nips2012-network.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, l in enumerate(text) if l.startswith("| layer | cfg sections"))
    rows = []
    for line in text[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    assert len(rows) >= 15
    assert [r for r in rows if "{src}`alexnet-2012/layers/layers-145.cfg:" not in r] == []
