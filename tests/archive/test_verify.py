"""``archive.verify`` and ``python -m archive verify``: an installed tree is exactly its manifest.

Synthetic release for every kind of difference; the real releases, when fetched, must verify.
"""
from __future__ import annotations

import os

import pytest

from archive import fetch as fetching
from archive.manifest import RELEASE_IDS, load
from archive.verify import check_tree
from tests.archive.releases_fixture import FILES, RELEASE, env, run_cli, toy
from tests.conftest import release_dir

__all__ = ["env", "toy"]  # pytest fixtures used below


@pytest.fixture
def installed(env):
    fetching.fetch(RELEASE, from_git=env.toy.bare)
    assert check_tree(env.installed, env.manifest()) == []
    return env


def writable(path):
    path.chmod(path.stat().st_mode | 0o200)
    return path


def rewrite(path, data):
    """Change a read-only file's bytes and put its mode back, so only the content differs."""
    mode = path.stat().st_mode
    writable(path).write_bytes(data)
    path.chmod(mode)


def edit_content(root):
    rewrite(root / "src" / "model.py", b"def f(x):\n    return x + 2")


def edit_size(root):
    rewrite(root / "README.md", FILES["README.md"][0] + b"!")


def remove(root):
    os.remove(root / "src" / "deep" / "nested" / "table.txt")


def add_file(root):
    (root / "src" / "deep" / "new.txt").write_bytes(b"new\n")


def add_folder(root):
    (root / "docs").mkdir()


def chmod_executable(root):
    (root / "data" / "empty.cfg").chmod(0o555)


def chmod_writable(root):
    writable(root / "run.sh")


def symlink_instead(root):
    os.remove(root / "README.md")
    os.symlink("run.sh", root / "README.md")


CHANGES = {
    edit_content: ("src/model.py", "content differs"),
    edit_size: ("README.md", f"size {len(FILES['README.md'][0]) + 1} bytes, "
                             f"expected {len(FILES['README.md'][0])}"),
    remove: ("src/deep/nested/table.txt", "missing"),
    add_file: ("src/deep/new.txt", "extra"),
    add_folder: ("docs", "extra directory"),
    chmod_executable: ("data/empty.cfg", "the manifest says 100644"),
    chmod_writable: ("run.sh", "mode 0755, expected 0555"),
    symlink_instead: ("README.md", "symbolic link"),
}


@pytest.mark.parametrize("change", CHANGES, ids=lambda f: f.__name__)
def test_verify_names_what_changed(installed, change):
    path, what = CHANGES[change]
    change(installed.installed)
    problems = check_tree(installed.installed, installed.manifest())
    assert [p.path for p in problems] == [path]
    assert what in problems[0].what


def test_verify_reports_every_difference(installed):
    for change in (edit_content, remove, add_file):
        change(installed.installed)
    problems = check_tree(installed.installed, installed.manifest())
    assert [p.path for p in problems] == ["src/deep/nested/table.txt", "src/deep/new.txt",
                                          "src/model.py"]


def test_cli_verify_fails_naming_the_edited_file(installed):
    ok = run_cli("verify", RELEASE, env=installed.vars)
    assert ok.returncode == 0, ok.stderr
    total = sum(len(data) for data, _ in FILES.values())
    assert ok.stdout == (f"{RELEASE}: OK, {len(FILES)} files, {total} bytes match commit "
                         f"{installed.toy.commit[:12]}\n")
    writable(installed.installed / "src" / "model.py").write_bytes(b"edited\n")
    bad = run_cli("verify", env=installed.vars)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    size = len(FILES["src/model.py"][0])
    assert f"{RELEASE}/src/model.py: size 7 bytes, expected {size}" in bad.stderr
    assert f"{RELEASE}/src/model.py: mode 0644, expected 0444" in bad.stderr
    assert "2 differences from the manifest" in bad.stderr
    listed = run_cli("list", env=installed.vars)
    assert listed.returncode == 0 and "installed, 2 differences" in listed.stdout
    # a fetch restores it
    fetching.fetch(RELEASE, from_git=installed.toy.bare)
    assert run_cli("verify", env=installed.vars).returncode == 0


def test_cli_verify_of_a_release_not_installed(env):
    run = run_cli("verify", env=env.vars)
    assert run.returncode == 1
    assert "toy is not installed" in run.stderr and "Traceback" not in run.stderr
    assert "not installed" in run_cli("list", env=env.vars).stdout
    unknown = run_cli("verify", "nope", env=env.vars)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1


@pytest.mark.release
@pytest.mark.parametrize("release", RELEASE_IDS)
def test_real_release_verifies(release):
    """``original/<release>``, once fetched, is exactly its manifest (content, modes, no extras)."""
    root = release_dir(release)
    problems = check_tree(root, load(release))
    assert problems == [], [str(p) for p in problems[:10]]
