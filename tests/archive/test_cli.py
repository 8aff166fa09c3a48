"""One ArgumentParser for every command line (port.errors.ArgumentParser: a usage mistake is one
line and exit 2), and the dependency rule that lets the archive use it: the archive may import the
port, the port imports no archive module."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from archive import ROOT
from archive.__main__ import main


def _modules(*folders: str) -> list[Path]:
    return [p for f in folders for p in sorted((ROOT / f).rglob("*.py")) if "__pycache__" not in p.parts]


@pytest.mark.parametrize("argv, needle", [(["bogus"], "invalid choice"),
                                          (["manifest", "alexnet-2012"], "--from-git")])
def test_archive_usage_mistake_is_one_line_and_exit_2(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m archive: ") and needle in err and err.count("\n") == 1


def test_every_command_line_uses_the_one_argument_parser():
    """No module builds an argparse.ArgumentParser of its own or subclasses one, except
    port/errors.py, which defines the one."""
    found = []
    for p in _modules("port", "archive", "benchmarks"):
        if p == ROOT / "port" / "errors.py":
            continue
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "argparse.ArgumentParser":
                found.append(f"{p.relative_to(ROOT)}:{node.lineno}: argparse.ArgumentParser(...)")
            if isinstance(node, ast.ClassDef) and any("ArgumentParser" in ast.unparse(b) for b in node.bases):
                found.append(f"{p.relative_to(ROOT)}:{node.lineno}: class {node.name}")
    assert found == []


def test_the_port_imports_no_archive_module():
    found = []
    for p in _modules("port"):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            found += [f"{p.relative_to(ROOT)}:{node.lineno}: {n}" for n in names if n.split(".")[0] == "archive"]
    assert found == []
