"""The one parser of Ports:/DIVERGES: lines, and the check that every Ports: line of the port
resolves: in the manifests always, and against the symbol when the release is fetched."""
from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import pytest

from archive import ORIGINAL, ROOT, xref
from archive.manifest import Manifest, describe, load_all

PORT_SOURCE = textwrap.dedent('''\
    """A module."""


    class ConvLayer:
        """Conv.

        Ports: rel/src/layer.cu:3-4 ConvLayer::fpropActs
        """

        def fprop_acts(self):
            """Ports: rel/src/layer.cu:5 bpropActs"""
            # DIVERGES: single device instead of one thread per GPU
            return 1


    def helper():
        return 2  # Ports: rel/README:1-2
''')
ORIGINAL_FILE = b"// header\n\nvoid ConvLayer::fpropActs() {\n}\nvoid ConvLayer::bpropActs() {}\n"


@pytest.fixture
def tiny(tmp_path: Path):
    (tmp_path / "port").mkdir()
    (tmp_path / "port" / "mod.py").write_text(PORT_SOURCE)
    orig = tmp_path / "original" / "rel" / "src"
    orig.mkdir(parents=True)
    (orig / "layer.cu").write_bytes(ORIGINAL_FILE)
    files = {"src/layer.cu": describe(ORIGINAL_FILE, "src/layer.cu", "100644"),
             "README": describe(b"a\nb", "README", "100644")}
    man = Manifest("rel", "https://example.invalid/rel", "0" * 40, "2012-07-25", "BSD", "test", files)
    return tmp_path, {"rel": man}


def test_scan_finds_refs_owners_and_divergences(tiny):
    root, _ = tiny
    refs, divs = xref.scan([root / "port"], root=root)
    assert [(r.owner.qualname, r.path, r.first, r.last, r.symbol) for r in refs] == [
        ("ConvLayer", "src/layer.cu", 3, 4, "ConvLayer::fpropActs"),
        ("ConvLayer.fprop_acts", "src/layer.cu", 5, 5, "bpropActs"),
        ("helper", "README", 1, 2, ""),
    ]
    assert refs[0].port_file == "port/mod.py" and refs[0].line == 7
    assert refs[1].owner.first == 10 and refs[1].owner.last == 13
    assert [(d.owner.qualname, d.reason) for d in divs] == [
        ("ConvLayer.fprop_acts", "single device instead of one thread per GPU")]


def test_check_passes_on_good_refs(tiny):
    root, mans = tiny
    refs, _ = xref.scan([root / "port"], root=root)
    assert xref.check(refs, mans, original=root / "original") == []


@pytest.mark.parametrize("line, message", [
    ("Ports: nope/src/layer.cu:3-4 X", "unknown release 'nope'"),
    ("Ports: rel/src/missing.cu:1-2 X", "has no file 'src/missing.cu'"),
    ("Ports: rel/src/layer.cu:4-9 X", "lie outside rel/src/layer.cu (5 lines)"),
    ("Ports: rel/src/layer.cu:4-3 X", "lie outside"),
    ("Ports: rel/src/layer.cu:1-2 ConvLayer::fpropActs", "does not appear in rel/src/layer.cu:1-2"),
])
def test_check_names_each_problem(tiny, line, message):
    root, mans = tiny
    (root / "port" / "bad.py").write_text(f'def f():\n    """{line}"""\n')
    refs, _ = xref.scan([root / "port" / "bad.py"], root=root)
    problems = xref.check(refs, mans, original=root / "original")
    assert len(problems) == 1 and problems[0].startswith("port/bad.py:2: ") and message in problems[0]


def test_symbol_is_not_checked_without_the_release(tiny):
    root, mans = tiny
    (root / "port" / "bad.py").write_text('def f():\n    """Ports: rel/src/layer.cu:1-2 Absent"""\n')
    refs, _ = xref.scan([root / "port" / "bad.py"], root=root)
    assert xref.check(refs, mans, original=root / "elsewhere") == []


def test_symbol_names():
    assert xref.symbol_names("ConvLayer::fpropActs") == ["fpropActs"]
    assert xref.symbol_names("LayerParser.parse_layers") == ["parse_layers"]
    assert xref.symbol_names("[conv1]") == ["[conv1]"]
    assert xref.symbol_names("") == []


def test_every_ports_line_of_the_port_resolves():
    """Every Ports: line in port/ names a pinned file and a range inside it; where the release
    is fetched, the symbol it names lies in the range."""
    refs, _ = xref.scan([ROOT / "port"])
    problems = xref.check(refs, load_all(), original=ORIGINAL)
    assert problems == [], "\n".join(problems)


def test_every_ported_module_cites_the_original():
    """A port module with functions carries at least one Ports: line (the port says what it ports),
    or says in its docstring, on a line starting ``Not a port:``, why it has none."""
    refs, _ = xref.scan([ROOT / "port"])
    citing = {r.port_file for r in refs}
    exempt = {"port/backend.py", "port/errors.py"}  # the project's own plumbing
    modules = set()
    for p in (ROOT / "port").rglob("*.py"):
        text = p.read_text()
        doc = ast.get_docstring(ast.parse(text)) or ""
        if "def " in text and p.name != "__init__.py" and not re.search(r"^Not a port: \S", doc, re.M):
            modules.add(p.relative_to(ROOT).as_posix())
    missing = sorted(modules - citing - exempt)
    assert missing == [], f"modules without any Ports: line: {missing}"


def test_a_wrapped_divergence_is_read_whole(tmp_path):
    """A DIVERGES: reason wrapped over several lines (docstring or comment) is one reason."""
    (tmp_path / "port").mkdir()
    (tmp_path / "port" / "mod.py").write_text(textwrap.dedent('''\
        def f():
            """Doc.

            DIVERGES: the first part of a long reason,
            its second line,
            and its third.

            Ports: rel/src/layer.cu:3-4 ConvLayer::fpropActs
            """
            # DIVERGES: a comment reason
            # that goes on.
            return 1
    '''))
    _, divs = xref.scan([tmp_path / "port"], root=tmp_path)
    assert [(d.reason, d.line, d.last) for d in divs] == [
        ("the first part of a long reason, its second line, and its third.", 4, 6),
        ("a comment reason that goes on.", 10, 11)]


def test_no_divergence_line_of_the_port_is_longer_than_100():
    """Every DIVERGES: line in port/ is wrapped to <= 100 characters (the scan reads the wrapped
    reason whole: test_a_wrapped_divergence_is_read_whole)."""
    _, divs = xref.scan([ROOT / "port"])
    assert divs
    long = []
    for d in divs:
        lines = (ROOT / d.port_file).read_text(encoding="utf-8").splitlines()
        long += [f"{d.port_file}:{n}: {len(lines[n - 1])} chars" for n in range(d.line, (d.last or d.line) + 1)
                 if len(lines[n - 1]) > 100]
    assert long == [], "\n".join(long)


def test_port_only_is_a_divergence_of_its_own_kind(tmp_path):
    """``Port-only:`` (a check the port adds) is scanned like ``DIVERGES:``, with its kind; a
    reason stops at the next marker of either kind."""
    (tmp_path / "port").mkdir()
    (tmp_path / "port" / "mod.py").write_text(textwrap.dedent('''\
        def f(x):
            # DIVERGES: one reason
            # Port-only: a refused input,
            # said on two lines.
            if x < 0:  # Port-only: another
                raise ValueError(x)
    '''))
    _, divs = xref.scan([tmp_path / "port"], root=tmp_path)
    assert [(d.kind, d.reason, d.line, d.last) for d in divs] == [
        ("DIVERGES", "one reason", 2, 2), ("Port-only", "a refused input, said on two lines.", 3, 4),
        ("Port-only", "another", 5, 5)]


def test_the_port_marks_its_checks_port_only():
    """The port's Port-only: lines are found (listed on the site's divergences page)."""
    _, divs = xref.scan([ROOT / "port"])
    assert {d.kind for d in divs} == {"DIVERGES", "Port-only"}
    assert all(d.reason for d in divs)
