"""Fetching a pinned release into ``original/<release>``, exactly as the manifest describes it.

A release's files come from one of three sources:

* the upstream host's archive of the pinned commit, over HTTPS (the default):
  ``https://codeload.github.com/<owner>/<repo>/tar.gz/<commit>``;
* a local git directory holding the commit (``--from-git DIR``: a clone or a bare mirror),
  read with ``git ls-tree`` and ``git cat-file``, so no work tree is needed;
* a local tarball (``.tar``, ``.tar.gz``...) or an unpacked folder (``--from PATH``), with or
  without one top-level folder (GitHub's ``<repo>-<commit>/``) to strip.

Whatever the source, the files are written into a temporary folder beside ``original/<release>``
(same file system), refused member by member if a path is absolute, leaves the tree (``..``), or
is a link or a device. Each member is streamed in 64 KiB chunks with its manifest size as the
ceiling: one that is longer (a tampered file, a sparse tar member claiming 40 GiB) is refused after
reading at most that size + 1 bytes, and a file the manifest lacks after one byte, so memory and
disk never depend on what an archive claims (a download likewise stops past twice the release's
size). The whole temporary tree is then checked against the manifest
(:func:`archive.verify.check_tree`: sizes, SHA-256, modes, nothing missing, nothing extra). Only a
tree that passes is installed, with one atomic exchange of directories (``renameat2``, or two
renames where that is not available); the previous tree is deleted afterwards. A failed or killed
fetch leaves the previous state as it was; its temporary folder is removed by the next fetch.
Installed files are read-only (``0444``, ``0555`` for executables); directories stay writable by
their owner so that a later fetch can replace them.

Tests point this module elsewhere with ``ARCHIVE_RELEASES_DIR`` (manifests), ``ARCHIVE_ORIGINAL``
(the folder holding the installed releases) and ``ARCHIVE_URL`` (the download URL template).
This module knows nothing of the command line; ``archive/__main__.py`` does.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from archive import ORIGINAL, RELEASES_DIR
from archive.manifest import Manifest, load, manifest_path, parse_ls_tree
from archive.verify import Problem, check_tree, installed_mode, is_installed, summarize
from port.errors import UserError

DEFAULT_URL = "https://codeload.github.com/{owner}/{repo}/tar.gz/{commit}"
ALTERNATIVES = ("fetch from a local git clone with --from-git DIR, or from a tarball or an "
                "unpacked folder with --from PATH")
LOCK_NAME = ".fetch.lock"
TIMEOUT_S = 60
CHUNK = 1 << 16


def releases_dir() -> Path:
    """Where the manifests are: ``$ARCHIVE_RELEASES_DIR`` or ``archive/releases``."""
    return Path(os.environ.get("ARCHIVE_RELEASES_DIR") or RELEASES_DIR)


def original_root() -> Path:
    """Where the releases are installed: ``$ARCHIVE_ORIGINAL`` or ``original/``."""
    return Path(os.environ.get("ARCHIVE_ORIGINAL") or ORIGINAL)


def url_template() -> str:
    return os.environ.get("ARCHIVE_URL") or DEFAULT_URL


def known_releases(manifests: Path | None = None) -> list[str]:
    """The releases that have a manifest, in name order."""
    directory = Path(manifests or releases_dir())
    return sorted(p.stem for p in directory.glob("*.toml"))


def load_manifest(release: str, manifests: Path | None = None) -> Manifest:
    """The manifest of ``release``; an unknown release is a :class:`UserError` naming the known."""
    directory = Path(manifests or releases_dir())
    if not manifest_path(release, directory).is_file():
        known = ", ".join(known_releases(directory)) or "none"
        raise UserError(f"unknown release {release!r} (no {manifest_path(release, directory)}; "
                        f"known: {known})")
    return load(release, directory)


def _progress(total: int | None, unit: str, desc: str):
    """A tqdm bar on a terminal; a silent stand-in otherwise."""
    if sys.stderr.isatty():
        from tqdm import tqdm
        return tqdm(total=total, unit=unit, unit_scale=unit == "B", desc=desc, leave=False)
    return contextlib.nullcontext(_Silent())


class _Silent:
    def update(self, n: int = 1) -> None:
        pass


# --- what a source yields ----------------------------------------------------------------------

@dataclass(frozen=True)
class Member:
    """One entry of a source: its name as the source spells it, its kind, and how to read it:
    ``open()`` gives a binary stream of its content (read in chunks, never whole)."""
    name: str
    kind: str                  # "file", "dir", or what it is when refused ("symbolic link"...)
    executable: bool = False
    open: Callable[[], BinaryIO] | None = None


class Source:
    """A place the files of one release come from. ``members`` lists everything it holds."""
    description: str
    commit: str | None = None  # the commit the source says it holds, when it says so

    def members(self) -> list[Member]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class TarSource(Source):
    def __init__(self, path: Path, description: str | None = None):
        self.description = description or str(path)
        try:
            self.tar = tarfile.open(path)
        except (tarfile.TarError, OSError):
            raise UserError(f"{self.description}: not a readable tar archive (expected .tar, "
                            ".tar.gz, .tar.bz2 or .tar.xz)") from None
        comment = self.tar.pax_headers.get("comment", "")
        if len(comment) == 40 and all(c in "0123456789abcdef" for c in comment):
            self.commit = comment  # git archive and GitHub record the commit id here

    def members(self) -> list[Member]:
        out = []
        try:
            infos = self.tar.getmembers()
        except (tarfile.TarError, OSError, EOFError) as e:
            raise UserError(f"{self.description}: damaged tar archive "
                            f"({' '.join(str(e).split())})") from None
        for m in infos:
            if m.isreg():
                out.append(Member(m.name, "file", bool(m.mode & stat.S_IXUSR),
                                  lambda m=m: self.tar.extractfile(m)))
            elif m.isdir():
                out.append(Member(m.name, "dir"))
            elif m.issym():
                out.append(Member(m.name, f"symbolic link (to {m.linkname})"))
            elif m.islnk():
                out.append(Member(m.name, f"hard link (to {m.linkname})"))
            elif m.ischr() or m.isblk():
                out.append(Member(m.name, "device file"))
            elif m.isfifo():
                out.append(Member(m.name, "FIFO"))
            else:
                out.append(Member(m.name, f"tar member of type {m.type!r}"))
        return out

    def close(self) -> None:
        self.tar.close()


class DirSource(Source):
    def __init__(self, path: Path):
        self.path = Path(path)
        self.description = str(path)

    def members(self) -> list[Member]:
        out = []
        for dirpath, dirnames, filenames in os.walk(self.path):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                full = Path(dirpath) / name
                rel = full.relative_to(self.path).as_posix()
                mode = full.lstat().st_mode
                if stat.S_ISLNK(mode):
                    out.append(Member(rel, f"symbolic link (to {os.readlink(full)})"))
                elif stat.S_ISDIR(mode):
                    out.append(Member(rel, "dir"))
                elif stat.S_ISREG(mode):
                    out.append(Member(rel, "file", bool(mode & stat.S_IXUSR),
                                      lambda full=full: open(full, "rb")))
                else:
                    out.append(Member(rel, "special file (device, FIFO or socket)"))
        return out


def git_dir(path: Path) -> Path:
    """The git directory of a clone (``DIR/.git``) or of a bare repository (``DIR`` itself)."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path}: no such directory (expected a git clone or a bare repository)")
    candidate = path / ".git" if (path / ".git").exists() else path
    run = subprocess.run(["git", f"--git-dir={candidate}", "rev-parse", "--git-dir"],
                         capture_output=True)
    if run.returncode != 0:
        raise UserError(f"{path}: not a git repository (expected a clone or a bare repository)")
    return candidate


def has_commit(gdir: Path, commit: str) -> bool:
    return subprocess.run(["git", f"--git-dir={gdir}", "cat-file", "-e", f"{commit}^{{commit}}"],
                          capture_output=True).returncode == 0


class GitSource(Source):
    """The tree of one commit, read from the object store: no work tree, no checkout."""

    def __init__(self, path: Path, manifest: Manifest):
        self.gdir = git_dir(path)
        self.commit = manifest.commit
        self.description = f"{path} at {manifest.commit[:12]}"
        if not has_commit(self.gdir, manifest.commit):
            raise UserError(f"{path}: does not contain commit {manifest.commit} of "
                            f"{manifest.id} (fetch it from {manifest.upstream} first)")

    def _git(self, *args: str, input: bytes | None = None) -> bytes:
        run = subprocess.run(["git", f"--git-dir={self.gdir}", *args], input=input,
                             capture_output=True)
        if run.returncode != 0:
            raise UserError(f"{self.description}: git {args[0]} failed: "
                            f"{run.stderr.decode(errors='replace').strip()}")
        return run.stdout

    def members(self) -> list[Member]:
        rows = parse_ls_tree(self._git("ls-tree", "-r", "-z", "--full-tree", self.commit))
        out = []
        for name, mode, kind, obj in rows:
            if mode in ("100644", "100755"):
                out.append(Member(name, "file", mode == "100755", lambda obj=obj: self._blob(obj)))
            elif mode == "120000":
                out.append(Member(name, "symbolic link"))
            elif mode == "160000":
                out.append(Member(name, f"submodule (commit {obj})"))
            else:
                out.append(Member(name, f"git {kind} with mode {mode}"))
        return out

    def _blob(self, obj: str) -> BinaryIO:
        """A stream of one blob, from one ``git cat-file --batch`` kept open for all of them."""
        if getattr(self, "_cat", None) is None:
            self._cat = subprocess.Popen(["git", f"--git-dir={self.gdir}", "cat-file", "--batch"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        cat = self._cat
        cat.stdin.write(f"{obj}\n".encode())
        cat.stdin.flush()
        header = cat.stdout.readline(200).split()
        if len(header) != 3 or header[1] != b"blob":
            raise UserError(f"{self.description}: git cat-file cannot read blob {obj}")
        return _BlobStream(cat.stdout, int(header[2]))

    def close(self) -> None:
        cat = getattr(self, "_cat", None)
        if cat is not None:
            cat.kill()
            cat.wait()
            self._cat = None


class _BlobStream:
    """``size`` bytes of a ``git cat-file --batch`` answer (the trailing newline is left alone;
    every blob is read in order, so the next request only starts after this one is closed)."""

    def __init__(self, f: BinaryIO, size: int):
        self.f, self.left = f, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n) if n else b""
        self.left -= len(data)
        return data

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        while self.read(CHUNK):
            pass
        self.f.read(1)  # the newline after the blob


# --- downloading -------------------------------------------------------------------------------

def download_url(manifest: Manifest) -> str:
    parts = urllib.parse.urlparse(manifest.upstream).path.strip("/").split("/")
    if len(parts) != 2:
        raise UserError(f"{manifest.id}: upstream {manifest.upstream} is not "
                        "https://<host>/<owner>/<repo>")
    owner, repo = parts[0], parts[1].removesuffix(".git")
    return url_template().format(owner=owner, repo=repo, commit=manifest.commit)


def download(url: str, dest: Path, limit: int | None = None) -> None:
    """Save ``url`` to ``dest``, streamed; an unreachable network is one clear :class:`UserError`,
    and so is a response longer than ``limit`` bytes (refused after reading ``limit + 1``)."""
    try:
        response = urllib.request.urlopen(url, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        raise UserError(f"{url}: HTTP {e.code} {e.reason}; {ALTERNATIVES}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise UserError(f"the network is unreachable ({url}: {reason}); {ALTERNATIVES}") from None
    try:
        with response, open(dest, "wb") as f:
            length = response.headers.get("Content-Length")
            with _progress(int(length) if length else None, "B", "download") as bar:
                n = 0
                while chunk := response.read(CHUNK):
                    n += len(chunk)
                    if limit is not None and n > limit:
                        raise UserError(f"download of {url} refused: longer than {limit} bytes, more "
                                        f"than an archive of this release can be; {ALTERNATIVES}")
                    f.write(chunk)
                    bar.update(len(chunk))
    except OSError as e:
        raise UserError(f"download of {url} failed ({e}); {ALTERNATIVES}") from None


# --- building the tree -------------------------------------------------------------------------

def _clean_name(name: str) -> PurePosixPath:
    """A member's path inside the source, refused if it could land outside the tree."""
    if name.startswith("/"):
        raise UserError(f"refused member {name!r}: an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UserError(f"refused member {name!r}: '..' leaves the release tree")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _strip_prefix(members: list[tuple[PurePosixPath, str]], manifest: Manifest) -> int:
    """1 when every member sits in one top-level folder that the release itself lacks, else 0."""
    tops = {p.parts[0] for p, _ in members}
    release_tops = {PurePosixPath(p).parts[0] for p in manifest.files}
    only_folder = all(len(p.parts) > 1 or kind == "dir" for p, kind in members)
    return 1 if len(tops) == 1 and only_folder and tops != release_tops else 0


def build_tree(source: Source, manifest: Manifest, tree: Path) -> None:
    """Write the release's files from ``source`` into the new folder ``tree`` and check it.

    Raises :class:`UserError` naming the first refused member, or every file that differs
    from the manifest; ``tree`` is then left for the caller to delete.
    """
    if source.commit and source.commit != manifest.commit:
        raise UserError(f"{source.description}: holds commit {source.commit}, not the pinned "
                        f"{manifest.commit} of {manifest.id}")
    members = source.members()
    paths = []
    for m in members:
        paths.append(_clean_name(m.name))
        if m.kind not in ("file", "dir"):
            raise UserError(f"refused member {m.name!r} of {source.description}: it is a "
                            f"{m.kind}; a release holds only regular files")
    strip = _strip_prefix([(p, m.kind) for m, p in zip(members, paths) if p.parts], manifest)
    tree.mkdir(mode=0o755)
    seen: set[str] = set()
    files = [(m, p) for m, p in zip(members, paths) if p.parts]
    with _progress(len(files), "file", manifest.id) as bar:
        for m, p in files:
            rel = PurePosixPath(*p.parts[strip:]) if len(p.parts) > strip else None
            if rel is None:
                continue  # the stripped top-level folder itself
            key = rel.as_posix()
            if m.kind == "file" and key in seen:
                raise UserError(f"refused member {m.name!r} of {source.description}: "
                                "the same path appears twice")
            seen.add(key)
            entry = manifest.files.get(key)
            try:
                _write(tree / key, m, entry.size if entry is not None else 0)
            except _TooBig as e:
                what = (f"size differs: larger than the manifest's {entry.size} bytes (refused after "
                        f"reading {e.read})" if entry is not None else "an extra file, not in the manifest")
                raise UserError(f"refused {source.description}: {key}: {what}; nothing was installed") from None
            except OSError as e:
                raise UserError(f"refused member {m.name!r} of {source.description}: "
                                f"it clashes with another member ({e.strerror})") from None
            bar.update(1)
    problems = check_tree(tree, manifest)
    if problems:
        raise UserError(f"refused {source.description}: {describe_problems(problems)}; "
                        f"nothing was installed")


class _TooBig(Exception):
    def __init__(self, read: int):
        self.read = read


def _write(target: Path, m: Member, limit: int) -> int:
    """Stream ``m`` into ``target`` in chunks; refuse (:class:`_TooBig`) as soon as it is longer
    than ``limit`` bytes (the manifest's size), having read at most ``limit + 1`` of them, so
    neither memory nor disk depends on what the source claims. Returns the bytes written."""
    if m.kind == "dir":
        target.mkdir(mode=0o755, parents=True, exist_ok=True)
        return 0
    target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    n = 0
    with m.open() as src, open(target, "xb") as f:
        while chunk := src.read(min(CHUNK, limit + 1 - n)):
            n += len(chunk)
            if n > limit:
                raise _TooBig(n)
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    target.chmod(installed_mode(m.executable))
    return n


def describe_problems(problems: list[Problem]) -> str:
    n = len(problems)
    return (f"{n} difference{'s' if n != 1 else ''} from the manifest: "
            + "; ".join(str(p) for p in problems))


# --- installing --------------------------------------------------------------------------------

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); False where that is not available."""
    libc_name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def install(tree: Path, target: Path, staging: Path) -> None:
    """Put the verified ``tree`` at ``target``; a previous ``target`` ends up in ``staging``."""
    if not os.path.lexists(target):
        os.rename(tree, target)
    elif _exchange(tree, target):
        pass  # ``tree`` now holds the previous release; the caller deletes ``staging``
    else:
        os.rename(target, staging / "previous")  # a kill here is undone by _recover
        os.rename(tree, target)
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself survives a crash
    finally:
        os.close(fd)


def _rmtree(path: Path) -> None:
    """Delete a tree, making read-only folders writable on the way down."""
    def retry(func, p, _exc):
        parent = os.path.dirname(p)
        os.chmod(parent, os.stat(parent).st_mode | stat.S_IRWXU)
        if os.path.isdir(p) and not os.path.islink(p):
            os.chmod(p, os.stat(p).st_mode | stat.S_IRWXU)
        func(p)
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, onerror=retry)
    elif os.path.lexists(path):
        os.unlink(path)


def _staging_prefix(release: str) -> str:
    return f".{release}.fetch-"


def _recover(root: Path, release: str) -> None:
    """Undo what a killed fetch of ``release`` left behind: restore, then delete, its temp dirs."""
    target = root / release
    for stale in sorted(root.glob(_staging_prefix(release) + "*")):
        previous = stale / "previous"
        if not os.path.lexists(target) and previous.is_dir():
            os.rename(previous, target)
        _rmtree(stale)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Hold the fetch lock of ``root``: one fetch at a time per original folder."""
    fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another fetch into {root} to finish...", file=sys.stderr)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# --- the entry points --------------------------------------------------------------------------

@dataclass(frozen=True)
class Result:
    release: str
    action: str        # "installed" or "skipped"
    files: int
    bytes: int
    source: str

    def __str__(self) -> str:
        if self.action == "skipped":
            return (f"{self.release}: already installed and verified ({self.files} files, "
                    f"{self.bytes} bytes); nothing to do (--force fetches it again)")
        return (f"{self.release}: installed {self.files} files ({self.bytes} bytes) from "
                f"{self.source}, verified against the manifest")


def check_source(manifest: Manifest, *, from_git: Path | None, from_path: Path | None) -> None:
    """Refuse a local source that cannot hold the release, before anything else is done."""
    if from_git is not None:
        GitSource(from_git, manifest)
    elif from_path is not None and Path(from_path).is_file():
        TarSource(from_path).close()
    elif from_path is not None and not Path(from_path).is_dir():
        raise UserError(f"{from_path}: no such file or directory (expected a tarball or a "
                        "folder)")


def open_source(manifest: Manifest, *, from_git: Path | None, from_path: Path | None,
                work: Path) -> Source:
    """The source named on the command line (already passed :func:`check_source`); the download
    goes into ``work``."""
    if from_git is not None:
        return GitSource(from_git, manifest)
    if from_path is not None:
        return DirSource(from_path) if Path(from_path).is_dir() else TarSource(from_path)
    url = download_url(manifest)
    dest = work / "download.tar.gz"
    summary = summarize(manifest)  # a tar holds each file, a 512-byte header and padding per file
    download(url, dest, limit=2 * summary.bytes + 2048 * (summary.files + 64) + (16 << 20))
    return TarSource(dest, description=url)


def fetch(release: str, *, from_git: Path | None = None, from_path: Path | None = None,
          force: bool = False, manifests: Path | None = None, root: Path | None = None) -> Result:
    """Install ``release`` into ``<root>/<release>`` unless it is already there and verified."""
    manifest = load_manifest(release, manifests)
    root = Path(root or original_root())
    root.mkdir(parents=True, exist_ok=True)
    target = root / release
    summary = summarize(manifest)
    check_source(manifest, from_git=from_git, from_path=from_path)
    with _locked(root):
        _recover(root, release)
        if not force and is_installed(target) and not check_tree(target, manifest):
            return Result(release, "skipped", summary.files, summary.bytes, str(target))
        staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(release), dir=root))
        try:
            source = open_source(manifest, from_git=from_git, from_path=from_path, work=staging)
            try:
                build_tree(source, manifest, staging / "tree")
            finally:
                source.close()
            install(staging / "tree", target, staging)
        finally:
            _rmtree(staging)
    return Result(release, "installed", summary.files, summary.bytes, source.description)


def verify(release: str, *, manifests: Path | None = None,
           root: Path | None = None) -> list[Problem]:
    """Every difference between the installed ``release`` and its manifest."""
    manifest = load_manifest(release, manifests)
    target = Path(root or original_root()) / release
    if not is_installed(target):
        return [Problem(".", f"{release} is not installed ({target} is absent or empty)")]
    return check_tree(target, manifest)
