"""The annotations under docs/annotations and the {src} references of the docs: every target
parses, lies inside its file (manifest line counts) and, with the release fetched, contains its
symbol. The same checks as the build's, without building the site."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from archive import ROOT, xref
from archive import manifest as m

DOCS = ROOT / "docs"
ANNOTATIONS = DOCS / "annotations"
DIRECTIVE_RE = re.compile(r"^(?P<fence>`{3,}|~{3,})\{annotation\}\s*(?P<arg>.*)$")
SRC_ROLE_RE = re.compile(r"\{src\}`(?P<body>[^`]+)`")


def annotation_args(path: Path) -> list[tuple[int, str]]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        mm = DIRECTIVE_RE.match(line.strip())
        if mm:
            out.append((n, mm["arg"].strip()))
    return out


def src_targets(path: Path) -> list[tuple[int, str]]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        for mm in SRC_ROLE_RE.finditer(line):
            body = mm["body"]
            if body.endswith(">") and "<" in body:
                body = body[:-1].rsplit("<", 1)[1]
            out.append((n, body.strip()))
    return out


def to_ref(source: Path, line: int, arg: str) -> xref.PortsRef:
    mm = xref.PORTS_RE.match("Ports: " + arg)
    assert mm, f"{source}:{line}: cannot parse {arg!r} as <release>/<path>:<first>-<last> [Symbol]"
    first = int(mm["first"])
    last = int(mm["last"]) if mm["last"] else first
    return xref.PortsRef(str(source.relative_to(ROOT)), line, None, mm["release"], mm["path"],
                         first, last, (mm["symbol"] or "").strip())


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
    assert bool(xref.PORTS_RE.match("Ports: " + arg)) == ok


def test_check_catches_a_wrong_range_and_symbol(alexnet_2012):
    """The checks used above can fail: a range past the end and a misplaced symbol."""
    man = m.load_all()
    n = man["alexnet-2012"].files["src/layer.cu"].lines
    bad = [to_ref(ROOT / "docs" / "x.md", 1, f"alexnet-2012/src/layer.cu:{n}-{n + 1} X"),
           to_ref(ROOT / "docs" / "x.md", 2, "alexnet-2012/src/layer.cu:1-5 ConvLayer::fpropActs")]
    problems = xref.check(bad, man)
    assert len(problems) == 2 and "outside" in problems[0] and "does not appear" in problems[1]
