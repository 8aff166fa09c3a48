"""Pinned release manifests: ``archive/releases/<id>.toml``, one per release.

A manifest records where a release comes from (upstream URL, commit, commit date, license,
provenance) and, for every file of that commit's tree, its path, git mode, size, SHA-256, git
blob id (also its Software Heritage identifier ``swh:1:cnt:<blob>``), line count and whether it
ends with a newline. Manifests are generated from the upstream git history by
``python -m archive manifest --from-git DIR RELEASE`` (never typed by hand) and read with
:func:`load`.
"""
from __future__ import annotations

import hashlib
import subprocess
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import tomli_w

from archive import RELEASES_DIR
from port.util import atomic_write_bytes

# The pinned releases. The manifests are generated from these pins.
PINS: dict[str, dict[str, str]] = {
    "alexnet-2012": {
        "upstream": "https://github.com/computerhistory/AlexNet-Source-Code",
        "commit": "2f8b81f76470bf873c865754ad8f4a5e0dbbeb7b",
        "license": "BSD-2-Clause (Copyright 2023 Google LLC)",
        "provenance": (
            "The AlexNet source released by the Computer History Museum and Google in March 2025: "
            "Alex Krizhevsky's cuda-convnet working copy as of early 2013 (diaries run to "
            "2013-03-04), with the layer/parameter cfg files of a year of ImageNet experiments. "
            "It calls cudaconv2, nvmatrix and Python helpers that it does not contain."
        ),
    },
    "cuda-convnet-r561": {
        "upstream": "https://github.com/dnouri/cuda-convnet",
        "commit": "6627f678f986b9993fe61e331c731bb8aadf8896",
        "license": "BSD-2-Clause (Copyright (c) 2011, Alex Krizhevsky)",
        "provenance": (
            "git-svn mirror of code.google.com/p/cuda-convnet, trunk@561 (2012-07-25), the last "
            "commit by Alex Krizhevsky: the closest public ancestor of the 2012 release and the "
            "only public home of the cudaconv2 and nvmatrix code that the release calls."
        ),
    },
    "cuda-convnet2": {
        "upstream": "https://github.com/akrizhevsky/cuda-convnet2",
        "commit": "3238bf0367f63eb370e897b9e5714794cb67ddc2",
        "license": "Apache-2.0",
        "provenance": (
            "Alex Krizhevsky's 2014 successor (cudaconv3 Kepler kernels, data and model "
            "parallelism); the only public source of cross-map normalization with minDiv."
        ),
    },
}
RELEASE_IDS = tuple(PINS)


@dataclass(frozen=True)
class FileEntry:
    path: str
    mode: str            # git mode: "100644" or "100755"
    size: int
    sha256: str
    blob: str            # git blob id; the SWHID is swh:1:cnt:<blob>
    lines: int           # number of newline-terminated lines, plus one if the tail lacks "\n"
    final_newline: bool  # whether the file ends with "\n" (empty files: False)

    @property
    def swhid(self) -> str:
        return f"swh:1:cnt:{self.blob}"

    @property
    def executable(self) -> bool:
        return self.mode == "100755"


@dataclass(frozen=True)
class Manifest:
    id: str
    upstream: str
    commit: str
    commit_date: str
    license: str
    provenance: str
    files: dict[str, FileEntry] = field(default_factory=dict)

    def permalink(self, path: str, first: int | None = None, last: int | None = None) -> str:
        """The upstream URL of ``path`` at the pinned commit (optionally a line range)."""
        url = f"{self.upstream}/blob/{self.commit}/{path}"
        if first is not None:
            url += f"#L{first}" + (f"-L{last}" if last is not None and last != first else "")
        return url


def manifest_path(release: str, directory: Path = RELEASES_DIR) -> Path:
    return directory / f"{release}.toml"


def load(release: str, directory: Path = RELEASES_DIR) -> Manifest:
    """Read ``<directory>/<release>.toml``."""
    with open(manifest_path(release, directory), "rb") as f:
        data = tomllib.load(f)
    files = {e["path"]: FileEntry(**e) for e in data.pop("files", [])}
    return Manifest(**data, files=files)


def load_all(directory: Path = RELEASES_DIR) -> dict[str, Manifest]:
    """Every manifest in ``directory``, keyed by release id, in file-name order."""
    return {p.stem: load(p.stem, directory) for p in sorted(directory.glob("*.toml"))}


def describe(data: bytes, path: str, mode: str, blob: str | None = None) -> FileEntry:
    """The manifest entry of a file's bytes."""
    if blob is None:
        blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    return FileEntry(path=path, mode=mode, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                     blob=blob, lines=lines, final_newline=data.endswith(b"\n"))


def _git(git_dir: Path, *args: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], check=True,
                          capture_output=True).stdout


def parse_ls_tree(raw: bytes) -> list[tuple[str, str, str, str]]:
    """The rows of ``git ls-tree -r -z`` output: (path, git mode, kind, object id)."""
    rows = []
    for row in filter(None, raw.split(b"\0")):
        meta, path = row.split(b"\t", 1)
        mode, kind, obj = meta.decode().split()
        rows.append((path.decode(), mode, kind, obj))
    return rows


def from_git(git_dir: Path, release: str, commit: str, upstream: str, license: str,
             provenance: str) -> Manifest:
    """Generate the manifest of ``commit``'s tree from a git directory (bare or not)."""
    git_dir = Path(git_dir)
    if (git_dir / ".git").exists():
        git_dir = git_dir / ".git"
    date = _git(git_dir, "show", "-s", "--format=%cI", commit).decode().strip()
    files: dict[str, FileEntry] = {}
    for path, mode, kind, blob in parse_ls_tree(_git(git_dir, "ls-tree", "-r", "-z", "--full-tree", commit)):
        if kind != "blob" or mode not in ("100644", "100755"):
            raise ValueError(f"{release}: {path} is a {kind} with mode {mode}; "
                             "only regular files can be pinned")
        files[path] = describe(_git(git_dir, "cat-file", "blob", blob), path, mode, blob)
    return Manifest(id=release, upstream=upstream, commit=commit, commit_date=date,
                    license=license, provenance=provenance, files=files)


def pinned_from_git(git_dir: Path, release: str) -> Manifest:
    """The manifest of a pinned release, generated from a git directory holding its commit."""
    return from_git(git_dir, release, **PINS[release])


def write(manifest: Manifest, directory: Path = RELEASES_DIR) -> Path:
    """Write the manifest atomically; returns its path."""
    data = asdict(manifest)
    data["files"] = [asdict(e) for e in sorted(manifest.files.values(), key=lambda e: e.path)]
    target = manifest_path(manifest.id, directory)
    header = (f"# Pinned release {manifest.id}: generated by `python -m archive manifest` from the\n"
              f"# upstream git history. Do not edit by hand.\n")
    text = header + tomli_w.dumps(data)
    atomic_write_bytes(target, lambda f: f.write(text.encode("utf-8")))
    return target
