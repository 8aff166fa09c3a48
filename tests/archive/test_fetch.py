"""``archive.fetch`` and ``python -m archive fetch`` on a synthetic release (no network).

Every source (bare git, clone, GitHub-style tarball, plain tar, folder, HTTP download from a local
server) must install exactly the manifest's tree, read-only; a source that differs in one byte,
one file or one mode, or holds a dangerous member, is refused naming it, with nothing installed;
an interrupted or killed fetch leaves the previous tree as it was.
"""
from __future__ import annotations

import http.server
import os
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import threading
import urllib.error
import urllib.request

import pytest

from archive import ROOT
from archive import fetch as fetching
from archive import __main__ as cli
from archive.verify import check_tree
from port.errors import UserError
from tests.archive.releases_fixture import (FILES, RELEASE, env, run_cli, snapshot, tar_of, toy,
                                            toy_members)

__all__ = ["env", "toy"]  # pytest fixtures used below


def assert_installed(e) -> None:
    """The toy is installed byte for byte, read-only, executables 0555, folders writable."""
    assert check_tree(e.installed, e.manifest()) == []
    for path, (data, executable) in FILES.items():
        f = e.installed / path
        assert f.read_bytes() == data
        assert stat.S_IMODE(f.stat().st_mode) == (0o555 if executable else 0o444)
    for d in [e.installed, *(p for p in e.installed.rglob("*") if p.is_dir())]:
        assert d.stat().st_mode & stat.S_IWUSR, d
    assert not list(e.original.glob(".toy.fetch-*")), "a temporary folder was left behind"


def assert_nothing_installed(e) -> None:
    assert not os.path.lexists(e.installed)
    assert not list(e.original.glob(".toy.fetch-*"))


# --- clean fetches -----------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["bare", "work"])
def test_fetch_from_git(env, which):
    result = fetching.fetch(RELEASE, from_git=getattr(env.toy, which))
    assert result.action == "installed" and result.files == len(FILES)
    assert_installed(env)


@pytest.mark.parametrize("which", ["tarball", "plain_tar"])
def test_fetch_from_tarball(env, which):
    fetching.fetch(RELEASE, from_path=getattr(env.toy, which))
    assert_installed(env)


@pytest.mark.parametrize("top_folder", [True, False])
def test_fetch_from_folder(env, tmp_path, top_folder):
    unpacked = tmp_path / "unpacked"
    with tarfile.open(env.toy.tarball) as tar:
        tar.extractall(unpacked, filter="tar")
    folder = unpacked if top_folder else unpacked / f"toy-{env.toy.commit}"
    assert len(list(folder.iterdir())) == (1 if top_folder else 4)
    fetching.fetch(RELEASE, from_path=folder)
    assert_installed(env)


def test_fetch_downloads_the_commit_archive(env, monkeypatch):
    """The default source: ``ARCHIVE_URL`` filled with owner, repo and commit, over HTTP."""
    served = env.toy.tarball.read_bytes()
    asked = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(served)))
            self.end_headers()
            self.wfile.write(served)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("ARCHIVE_URL", f"http://127.0.0.1:{server.server_port}"
                           "/{owner}/{repo}/tar.gz/{commit}")
        result = fetching.fetch(RELEASE)
    finally:
        server.shutdown()
    assert asked == [f"/example/toy/tar.gz/{env.toy.commit}"]
    assert result.action == "installed"
    assert_installed(env)


def test_default_url_is_the_upstream_codeload_archive(env, monkeypatch):
    monkeypatch.delenv("ARCHIVE_URL")
    assert fetching.download_url(env.manifest()) == (
        f"https://codeload.github.com/example/toy/tar.gz/{env.toy.commit}")


# --- sources that differ from the manifest -----------------------------------------------------

TAMPERED = {
    "one byte changed": ({"src/model.py": ("file", b"def f(x):\n    return x + 2", 0o644)},
                         "src/model.py", "content differs"),
    "file missing": ({"src/deep/nested/table.txt": None}, "src/deep/nested/table.txt",
                     "missing"),
    "file extra": ({"src/extra.py": b"x = 1\n"}, "src/extra.py", "extra"),
    "mode changed": ({"run.sh": ("file", FILES["run.sh"][0], 0o644)}, "run.sh",
                     "not executable"),
    "size changed": ({"README.md": FILES["README.md"][0] + b"\n"}, "README.md", "size"),
}


@pytest.mark.parametrize("case", TAMPERED)
def test_tampered_tarball_is_refused_naming_the_file(env, tmp_path, case):
    changes, path, what = TAMPERED[case]
    bad = tar_of(tmp_path / "bad.tar.gz", toy_members(changes), prefix="toy-x/")
    with pytest.raises(UserError) as err:
        fetching.fetch(RELEASE, from_path=bad)
    message = str(err.value)
    assert path in message and what in message and "nothing was installed" in message
    assert "\n" not in message
    assert_nothing_installed(env)


@pytest.mark.parametrize("case", ["one byte changed", "file extra", "mode changed"])
def test_tampered_source_leaves_the_previous_release(env, tmp_path, case):
    fetching.fetch(RELEASE, from_git=env.toy.bare)
    before = snapshot(env.installed)
    changes, path, _ = TAMPERED[case]
    bad = tar_of(tmp_path / "bad.tar.gz", toy_members(changes))
    with pytest.raises(UserError, match=path.replace(".", r"\.")):
        fetching.fetch(RELEASE, from_path=bad, force=True)
    assert snapshot(env.installed) == before
    assert_installed(env)


def test_tampered_folder_is_refused(env, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(env.toy.work, folder, ignore=shutil.ignore_patterns(".git"))
    (folder / "src" / "deep" / "blob.bin").write_bytes(b"\0" * 1024)
    with pytest.raises(UserError, match="src/deep/blob.bin: content differs"):
        fetching.fetch(RELEASE, from_path=folder)
    assert_nothing_installed(env)


def test_archive_of_another_commit_is_refused(env, tmp_path):
    bad = tmp_path / "other.tar"
    with tarfile.open(env.toy.plain_tar) as good, tarfile.open(
            bad, "w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "0123456789" * 4}) as out:
        assert good.pax_headers["comment"] == env.toy.commit  # git archive records it
        for m in good.getmembers():
            out.addfile(m, good.extractfile(m) if m.isreg() else None)
    with pytest.raises(UserError, match="holds commit 0123456789"):
        fetching.fetch(RELEASE, from_path=bad)
    assert_nothing_installed(env)


DANGEROUS = {
    "parent": ("../evil.txt", b"x", "'..'"),
    "parent inside": ("toy-x/src/../../evil.txt", b"x", "'..'"),
    "absolute": ("/tmp/evil.txt", b"x", "absolute"),
    "symlink": ("toy-x/src/link", ("symlink", "/etc/passwd", 0o777), "symbolic link"),
    "hardlink": ("toy-x/src/hard", ("hardlink", "toy-x/run.sh", 0o644), "hard link"),
    "fifo": ("toy-x/src/pipe", ("fifo", None, 0o644), "FIFO"),
}


@pytest.mark.parametrize("case", DANGEROUS)
def test_dangerous_members_are_refused(env, tmp_path, case):
    name, spec, what = DANGEROUS[case]
    members = {f"toy-x/{p}": s for p, s in toy_members().items()}
    members[name] = spec
    bad = tar_of(tmp_path / "bad.tar.gz", members)
    with pytest.raises(UserError) as err:
        fetching.fetch(RELEASE, from_path=bad)
    assert repr(name) in str(err.value) and what in str(err.value)
    assert_nothing_installed(env)
    assert not (tmp_path / "evil.txt").exists() and not (env.original / "evil.txt").exists()


def test_symlink_in_a_folder_source_is_refused(env, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(env.toy.work, folder, ignore=shutil.ignore_patterns(".git"))
    (folder / "README.md").unlink()
    (folder / "README.md").symlink_to("run.sh")
    with pytest.raises(UserError, match="'README.md'.*symbolic link"):
        fetching.fetch(RELEASE, from_path=folder)
    assert_nothing_installed(env)


# --- interrupted fetches -----------------------------------------------------------------------

@pytest.mark.parametrize("error", [RuntimeError("injected"), KeyboardInterrupt()])
def test_failure_after_the_tree_is_built_leaves_the_previous_release(env, monkeypatch, error):
    fetching.fetch(RELEASE, from_git=env.toy.bare)
    before = snapshot(env.installed)
    built = []

    def failing_install(tree, target, staging):
        built.append(check_tree(tree, env.manifest()))
        raise error

    monkeypatch.setattr(fetching, "install", failing_install)
    with pytest.raises(type(error)):
        fetching.fetch(RELEASE, from_path=env.toy.tarball, force=True)
    assert built == [[]], "the new tree should have been complete and verified"
    assert snapshot(env.installed) == before
    assert_installed(env)


KILLER = """
import os, signal, sys
from pathlib import Path
from archive import fetch
def killed(tree, target, staging):
    os.kill(os.getpid(), signal.SIGKILL)
fetch.install = killed
fetch.fetch("toy", from_path=Path(sys.argv[1]), force=True)
"""


def test_fetch_killed_midway_leaves_the_previous_release(env):
    fetching.fetch(RELEASE, from_git=env.toy.bare)
    before = snapshot(env.installed)
    run = subprocess.run([sys.executable, "-c", KILLER, str(env.toy.tarball)], cwd=ROOT,
                         env=env.vars, capture_output=True, timeout=60)
    assert run.returncode == -signal.SIGKILL, run.stderr
    assert snapshot(env.installed) == before
    stale = list(env.original.glob(".toy.fetch-*"))
    assert len(stale) == 1 and (stale[0] / "tree").is_dir()
    # the next fetch is not disturbed by the stale folder, and removes it
    assert fetching.fetch(RELEASE).action == "skipped"
    assert_installed(env)
    assert snapshot(env.installed) == before


def test_kill_between_the_two_fallback_renames_is_undone(env):
    """Where the atomic exchange is unavailable the previous tree is moved aside first; a fetch
    killed right then leaves it in the temporary folder, and the next fetch puts it back."""
    fetching.fetch(RELEASE, from_git=env.toy.bare)
    before = snapshot(env.installed)
    staging = env.original / ".toy.fetch-killed"
    staging.mkdir()
    os.rename(env.installed, staging / "previous")
    assert fetching.fetch(RELEASE).action == "skipped"
    assert snapshot(env.installed) == before
    assert_installed(env)


def test_fallback_install_without_exchange(env, monkeypatch):
    fetching.fetch(RELEASE, from_git=env.toy.bare)
    monkeypatch.setattr(fetching, "_exchange", lambda a, b: False)
    inode = (env.installed / "run.sh").stat().st_ino
    fetching.fetch(RELEASE, from_path=env.toy.tarball, force=True)
    assert (env.installed / "run.sh").stat().st_ino != inode
    assert_installed(env)


# --- fetching twice ----------------------------------------------------------------------------

def test_second_fetch_is_a_no_op(env):
    fetching.fetch(RELEASE, from_git=env.toy.bare)
    before = snapshot(env.installed)
    assert fetching.fetch(RELEASE, from_git=env.toy.bare).action == "skipped"
    assert fetching.fetch(RELEASE).action == "skipped"  # no network needed either
    assert snapshot(env.installed) == before


def test_force_fetches_again(env):
    fetching.fetch(RELEASE, from_git=env.toy.bare)
    before = snapshot(env.installed)
    assert fetching.fetch(RELEASE, from_path=env.toy.tarball, force=True).action == "installed"
    after = snapshot(env.installed)
    assert before.keys() == after.keys() and all(
        before[k][0] != after[k][0] for k in before), "every file should be new"
    assert_installed(env)


def test_an_edited_install_is_fetched_again(env):
    fetching.fetch(RELEASE, from_git=env.toy.bare)
    f = env.installed / "src" / "model.py"
    f.chmod(0o644)
    f.write_bytes(b"edited\n")
    assert fetching.fetch(RELEASE, from_git=env.toy.bare).action == "installed"
    assert_installed(env)


# --- errors a user sees ------------------------------------------------------------------------

def test_no_network_is_one_line_naming_the_other_sources(env, monkeypatch, capsys):
    def unreachable(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    assert cli.main(["fetch"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "network is unreachable" in err
    assert "--from-git DIR" in err and "--from PATH" in err
    assert list(env.original.iterdir()) == [env.original / fetching.LOCK_NAME]


def test_http_error_names_the_other_sources(env, monkeypatch):
    def not_found(url, *args, **kwargs):
        raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)

    monkeypatch.setattr(urllib.request, "urlopen", not_found)
    with pytest.raises(UserError, match="HTTP 404.*--from-git DIR.*--from PATH"):
        fetching.fetch(RELEASE)
    assert_nothing_installed(env)


def test_git_directory_without_the_commit(env, tmp_path):
    other = tmp_path / "other.git"
    subprocess.run(["git", "init", "-q", "--bare", str(other)], check=True)
    with pytest.raises(UserError, match=f"does not contain commit {env.toy.commit}"):
        fetching.fetch(RELEASE, from_git=other)
    with pytest.raises(UserError, match="not a git repository"):
        fetching.fetch(RELEASE, from_git=tmp_path)
    assert_nothing_installed(env)


def test_cli_fetch_verify_and_mistakes(env, tmp_path):
    """The command line, in subprocesses: exit codes, one-line messages, never a traceback."""
    no_network = run_cli("fetch", env=env.vars)
    assert no_network.returncode == 2, no_network.stderr
    assert no_network.stderr.count("\n") == 1 and "Traceback" not in no_network.stderr
    assert "network is unreachable" in no_network.stderr
    assert "--from-git DIR" in no_network.stderr and "--from PATH" in no_network.stderr
    assert not os.path.lexists(env.installed)

    first = run_cli("fetch", RELEASE, "--from", str(env.toy.tarball), env=env.vars)
    assert first.returncode == 0 and "installed 6 files" in first.stdout, first.stderr
    before = snapshot(env.installed)
    again = run_cli("fetch", "--missing", env=env.vars)  # --missing is the default
    assert again.returncode == 0 and "already installed and verified" in again.stdout
    assert snapshot(env.installed) == before

    ok = run_cli("verify", env=env.vars)
    assert ok.returncode == 0 and ok.stdout.strip().startswith(f"{RELEASE}: OK, 6 files")

    for args, expected in [
        (["fetch", "nope"], "unknown release 'nope'"),
        (["fetch", "--from", str(tmp_path / "absent.tar")], "exactly one RELEASE"),
        (["fetch", RELEASE, "--from", str(tmp_path / "absent.tar")], "no such file"),
        (["fetch", RELEASE, "--from", str(tmp_path), "--from-git", str(tmp_path)],
         "not allowed with"),
        (["fetch", "--from-git", str(tmp_path)], "not a git repository"),
        (["fetch", RELEASE, "--from", str(env.toy.releases / "toy.toml")],
         "not a readable tar archive"),
    ]:
        run = run_cli(*args, env=env.vars)
        assert run.returncode == 2, (args, run.stderr)
        assert run.stderr.count("\n") == 1 and expected in run.stderr, (args, run.stderr)
        assert "Traceback" not in run.stderr
    assert snapshot(env.installed) == before


def test_from_git_without_release_picks_the_releases_it_holds(env):
    run = run_cli("fetch", "--from-git", str(env.toy.bare), env=env.vars)
    assert run.returncode == 0, run.stderr
    assert_installed(env)


# --- hostile archives: members larger than they should be ---------------------------------------

def _sparse_tar(tmp_path, claimed: int):
    """A tarball of the toy whose README.md is a sparse GNU member of ``claimed`` bytes (a few
    KiB on disk), made by GNU tar; None where tar or the file system cannot make one."""
    import shutil as sh

    if sh.which("tar") is None:
        return None
    root = tmp_path / "src" / "toy-x"
    for path, (data, executable) in FILES.items():
        f = root / path
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data)
        f.chmod(0o755 if executable else 0o644)
    with open(root / "README.md", "r+b") as f:
        f.truncate(claimed)
    out = tmp_path / "sparse.tar.gz"
    r = subprocess.run(["tar", "--sparse", "-czf", str(out), "-C", str(tmp_path / "src"), "toy-x"],
                       capture_output=True, timeout=120)
    if r.returncode != 0 or out.stat().st_size > 1 << 20:
        return None
    return out


def test_sparse_member_claiming_gibs_is_refused_with_bounded_memory(env, tmp_path):
    """The issue's case: a 40 GiB sparse member was read whole (MemoryError). Now the member is
    streamed with the manifest's size as its ceiling: refused after size + 1 bytes, and the peak
    RSS of the whole fetch, measured in a child process, stays under 100 MB."""
    claimed = 40 << 30
    bad = _sparse_tar(tmp_path, claimed)
    if bad is None:
        pytest.skip("GNU tar or a sparse-capable file system is not available here")
    size = len(FILES["README.md"][0])
    code = ("import sys\n"
            "from archive import fetch\n"
            "from port.errors import UserError\n"
            "try:\n"
            f"    fetch.fetch({RELEASE!r}, from_path={str(bad)!r})\n"
            "except UserError as e:\n"
            "    print(e, file=sys.stderr)\n"
            "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')))\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env.vars, "PYTHONPATH": str(ROOT)},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"README.md: size differs: larger than the manifest's {size} bytes (refused after reading " \
           f"{size + 1}); nothing was installed" in r.stderr, r.stderr
    peak_kib = int(r.stdout.split()[-1])
    print(f"fetch of a 40 GiB sparse member: peak RSS {peak_kib} KiB")
    assert peak_kib < 100 * 1024, f"peak RSS {peak_kib} KiB"
    assert_nothing_installed(env)


def test_every_source_streams_with_the_manifest_size_as_ceiling(env, tmp_path, monkeypatch):
    """No member is read past its manifest size + 1, whatever the source (tar, folder, git)."""
    reads = []
    real_write = fetching._write

    def spy(target, m, limit):
        n = real_write(target, m, limit)
        reads.append((target.name, n, limit))
        return n

    monkeypatch.setattr(fetching, "_write", spy)
    fetching.fetch(RELEASE, from_git=env.toy.bare)
    files = [r for r in reads if r[0] in {p.rsplit("/", 1)[-1] for p in FILES}]
    assert files and all(n <= limit for _, n, limit in files)
    assert_installed(env)
    big = toy_members({"README.md": b"x" * (1 << 20)})
    with pytest.raises(UserError, match=r"README\.md: size differs: .*refused after reading"):
        fetching.fetch(RELEASE, from_path=tar_of(tmp_path / "big.tar.gz", big), force=True)
    assert_installed(env)  # the previous install stays


def test_a_download_longer_than_the_release_can_be_is_refused(env, tmp_path):
    class Endless(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(4096):
                    self.wfile.write(b"\0" * 65536)  # 256 MiB, far more than the toy can take
            except OSError:
                pass

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        os.environ["ARCHIVE_URL"] = f"http://127.0.0.1:{server.server_address[1]}/{{owner}}/{{repo}}/{{commit}}"
        with pytest.raises(UserError, match=r"refused: longer than \d+ bytes"):
            fetching.fetch(RELEASE)
    finally:
        server.shutdown()
    assert_nothing_installed(env)
