"""Checking a release tree on disk against its pinned manifest.

:func:`check_tree` compares a directory with a :class:`~archive.manifest.Manifest`, file by file:
nothing missing, nothing extra (files, symlinks, empty directories), every file regular with the
manifest's size and SHA-256, and the permissions an installed release has: ``0444``, or ``0555``
for the manifest's executables (git mode ``100755``). ``python -m archive fetch`` runs it on the
tree it has just built, before installing it; ``python -m archive verify`` runs it on what is
installed. This module reads and reports; it never changes a file.
"""
from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from archive.manifest import FileEntry, Manifest

READ_ONLY = 0o444   # the permissions of an installed file
EXECUTABLE = 0o555  # ... of an installed file whose git mode is 100755
CHUNK = 1 << 20


def installed_mode(executable: bool) -> int:
    """The permission bits of an installed file (``executable``: its git mode is 100755)."""
    return EXECUTABLE if executable else READ_ONLY


@dataclass(frozen=True)
class Problem:
    """One way a tree differs from its manifest: the release-relative path and what is wrong."""
    path: str
    what: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


@dataclass(frozen=True)
class Summary:
    """What a tree holds: the manifest's files found and their total size."""
    files: int
    bytes: int


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "a special file (device, FIFO or socket)"


def _check_file(path: Path, entry: FileEntry) -> list[Problem]:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return [Problem(entry.path, "missing")]
    if not stat.S_ISREG(st.st_mode):
        return [Problem(entry.path, f"is {_kind(st.st_mode)}, expected a regular file")]
    problems = []
    if st.st_size != entry.size:
        problems.append(Problem(entry.path, f"size {st.st_size} bytes, expected {entry.size}"))
    elif sha256_file(path) != entry.sha256:
        problems.append(Problem(entry.path,
                                f"content differs (sha256 is not {entry.sha256[:12]}…)"))
    perms = stat.S_IMODE(st.st_mode)
    executable = bool(perms & stat.S_IXUSR)
    if executable != entry.executable:
        problems.append(Problem(entry.path, (
            f"mode {perms:04o}: {'executable' if executable else 'not executable'}, the manifest "
            f"says {entry.mode} ({'executable' if entry.executable else 'not executable'})")))
    elif perms != installed_mode(entry.executable):
        problems.append(Problem(entry.path, (
            f"mode {perms:04o}, expected {installed_mode(entry.executable):04o} (installed files are "
            "read-only)")))
    return problems


def _walk(root: Path, manifest: Manifest, dirs: set[str]) -> list[Problem]:
    """Everything under ``root`` that the manifest does not list."""
    problems = []
    stack = [("", root)]
    while stack:
        rel, directory = stack.pop()
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            path = f"{rel}{e.name}"
            mode = e.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                if path in dirs:
                    stack.append((path + "/", Path(e.path)))
                elif path not in manifest.files:
                    problems.append(Problem(path, "extra directory (not in the manifest)"))
            elif path not in manifest.files and path not in dirs:
                problems.append(Problem(path, f"extra: {_kind(mode)} not in the manifest"))
            elif path in dirs:
                problems.append(Problem(path, f"is {_kind(mode)}, expected a directory"))
    return problems


def check_tree(root: Path, manifest: Manifest) -> list[Problem]:
    """Every difference between the tree at ``root`` and ``manifest``, sorted by path.

    An empty list means the tree is exactly the release: the same files, bytes and modes.
    """
    root = Path(root)
    if not root.is_dir():
        return [Problem(".", f"{root} is not a directory")]
    dirs = {str(Path(p).parents[i]) for p in manifest.files for i in range(len(Path(p).parts) - 1)}
    problems = _walk(root, manifest, dirs)
    for path, entry in manifest.files.items():
        problems += _check_file(root / path, entry)
    return sorted(problems, key=lambda p: p.path)


def summarize(manifest: Manifest) -> Summary:
    """How many files the release has and their total size."""
    return Summary(files=len(manifest.files), bytes=sum(e.size for e in manifest.files.values()))


def is_installed(root: Path) -> bool:
    """Whether ``root`` holds anything at all (an empty or absent folder is not installed)."""
    root = Path(root)
    return root.is_dir() and any(root.iterdir())
