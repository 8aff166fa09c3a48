"""The stitched history and the blame of every line (issue 21).

A made-up history of three stages, written here with git commands (no upstream code): ``rel-a``
with two SVN-like revisions, ``rel-b`` a snapshot (one commit of its tree, dated by the test),
``rel-c`` a history of its own that moves and reindents the file. Who wrote each line is known
by construction. The real histories (the bundles in ``../shared/releases``) check layer.cu's
counts, the published JSON's schema and that the three pinned releases' stitched commits hold
exactly the upstream trees; they skip, saying why, where the bundles are absent (CI has them).
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from archive import ORIGINAL, history as h
from archive.__main__ import main
from tests.archive.releases_fixture import GIT_ENV
from tests.conftest import SHARED, releases_required

BUNDLES = [SHARED / "releases", Path("/work/shared/releases")]


def git(repo: Path, *args: str, date: str = "2011-01-01T12:00:00+00:00", **kw) -> str:
    env = {**os.environ, **GIT_ENV, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    return subprocess.run(["git", "-c", "init.defaultBranch=main", *args], cwd=repo, check=True,
                          capture_output=True, env=env, **kw).stdout.decode().strip()


def commit(repo: Path, files: dict[str, str], message: str, date: str, remove: tuple = ()) -> str:
    for p in remove:
        git(repo, "rm", "-q", p)
    for p, text in files.items():
        (repo / p).parent.mkdir(parents=True, exist_ok=True)
        (repo / p).write_text(text)
        git(repo, "add", p)
    git(repo, "commit", "-q", "-m", message, date=date)
    return git(repo, "rev-parse", "HEAD")


A1 = "int one;\nint two;\nint three;\n"
A2 = "int one;\nint two_changed;\nint three;\nint four;\n"
B = A2 + "int new_in_b;\n"
C1 = "int one;\n    int two_changed;\nint three;\nint four;\nint new_in_b;\nint new_in_c;\n"
K = "int k_one;\nint k_two;\nint k_three;\n"   # in rel-a, not in rel-b, back in rel-c
REL_A, REL_B, REL_C = "rel-a", "rel-b", "rel-c"


def make_history(base: Path) -> tuple[Path, dict[str, str]]:
    """Three upstream repositories, bundled, installed as histories under ``base/original``;
    returns the original folder and the pinned commit of each release."""
    pins = {}
    a = base / "up-a"
    a.mkdir()
    git(a, "init", "-q")
    commit(a, {"f.c": A1}, "first\n\ngit-svn-id: http://example.invalid/svn/trunk@1 uuid", "2011-01-01T12:00:00+00:00")
    pins[REL_A] = commit(a, {"f.c": A2, "kern/k.c": K}, "second\n\ngit-svn-id: http://example.invalid/svn/trunk@2 uuid",
                         "2011-02-01T12:00:00+00:00")
    b = base / "up-b"
    b.mkdir()
    git(b, "init", "-q")
    commit(b, {"f.c": "placeholder\n"}, "museum import", "2024-12-10T12:00:00+00:00")
    pins[REL_B] = commit(b, {"f.c": B, "g.c": "int only_in_b;\n"}, "museum readme", "2025-03-12T12:00:00+00:00")
    c = base / "up-c"
    c.mkdir()
    git(c, "init", "-q")
    commit(c, {"src/f.c": C1, "kern3/k.c": K + "int k_new;\n"}, "successor", "2014-07-15T12:00:00+00:00")
    pins[REL_C] = commit(c, {"src/f.c": C1 + "int later;\n"}, "later", "2014-08-01T12:00:00+00:00")
    original = base / "original"
    for rel, repo in ((REL_A, a), (REL_B, b), (REL_C, c)):
        git(repo, "branch", "-q", "-f", rel, pins[rel])
        bundle = base / f"{rel}.bundle"
        git(repo, "bundle", "create", "-q", str(bundle), f"refs/heads/{rel}")
        h.fetch_bundle(rel, pins[rel], bundle, original)
    return original, pins


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    base = tmp_path_factory.mktemp("history")
    original, pins = make_history(base)
    stages = [h.Stage(REL_A, pins[REL_A], "https://example.invalid/a"),
              h.Stage(REL_B, pins[REL_B], "https://example.invalid/b", h.SNAPSHOT, "2013-03-04",
                      "Dated by the test."),
              h.Stage(REL_C, pins[REL_C], "https://example.invalid/c")]
    st = h.stitch(stages, original, base / "stitched.git")
    return base, original, pins, st


def test_fetch_bundle_refuses_a_bundle_at_another_commit(toy, tmp_path):
    base, _, pins, _ = toy
    with pytest.raises(h.UserError, match="not the pinned commit"):
        h.fetch_bundle(REL_A, "0" * 40, base / f"{REL_A}.bundle", tmp_path)
    with pytest.raises(h.UserError, match="not a git bundle holding refs/heads/rel-a"):
        h.fetch_bundle(REL_A, pins[REL_A], base / f"{REL_B}.bundle", tmp_path)
    assert not h.history_dir(tmp_path, REL_A).exists()  # nothing half-installed


def test_stitched_line_and_trailers(toy):
    _, _, pins, st = toy
    revs = st.revisions
    assert [r.release for r in revs] == [REL_A, REL_A, REL_B, REL_C, REL_C]
    assert [r.svn for r in revs] == [1, 2, None, None, None]
    assert revs[2].day == "2013-03-04" and revs[2].upstream == pins[REL_B]
    first_parent = git(st.path, "rev-list", "--first-parent", "--reverse", "main").split()
    assert first_parent == [r.id for r in revs]
    body = git(st.path, "log", "-1", "--format=%B", st.pinned[REL_A])
    assert f"Upstream-commit: {pins[REL_A]}" in body and "SVN-revision: 2" in body
    assert "Original-date: 2011-02-01T12:00:00+00:00" in body
    assert "Dated by the test." in git(st.path, "log", "-1", "--format=%B", st.pinned[REL_B])
    for rel in (REL_A, REL_B, REL_C):  # each pinned commit holds exactly its upstream tree
        hist = h.history_dir(toy[1], rel)
        assert git(st.path, "rev-parse", f"{rel}^{{tree}}") == git(hist, "rev-parse", f"{pins[rel]}^{{tree}}")


def test_blame_of_the_three_stages(toy):
    _, _, _, st = toy
    by = {r.id: r for r in st.revisions}

    def who(rel: str, path: str) -> list[str]:
        return [by[i].label if by[i].svn is not None else by[i].release
                for i in h.blame(st.path, st.pinned[rel], path)]

    assert who(REL_A, "f.c") == ["r1", "r2", "r1", "r2"]
    assert who(REL_B, "f.c") == ["r1", "r2", "r1", "r2", REL_B]
    assert git(st.path, "rev-parse", f"refs/archive/view/{REL_C}") == st.views[REL_C]
    assert who(REL_B, "g.c") == [REL_B]
    # moved to src/, one line reindented (-w), one added, then one more in a later commit
    assert who(REL_C, "src/f.c") == ["r1", "r2", "r1", "r2", REL_B, REL_C, REL_C]
    assert [by[i].summary for i in h.blame(st.path, st.pinned[REL_C], "src/f.c")][-2:] == ["successor", "later"]
    # a file the snapshot lacks: on the main line its lines look new in rel-c; on the view line
    # (the snapshot merged with rel-a's files) they go back to r2, and the view maps to main
    assert who(REL_C, "kern3/k.c") == [REL_C] * 4
    view = [st.view_map.get(i, i) for i in h.blame(st.path, st.views[REL_C], "kern3/k.c")]
    assert [by[i].label for i in view[:3]] == ["r2", "r2", "r2"]
    assert by[view[3]].release == REL_C and by[view[3]].summary == "successor"


def test_function_history_through_every_revision(toy):
    """Each function's changes, followed across the move to src/ (whitespace ignored, -w)."""
    _, _, _, st = toy
    by = {r.id: r for r in st.revisions}
    got = h.function_history(st.path, st.pinned[REL_C], "src/f.c", 7, [("top", 1, 2), ("rest", 3, 7)])
    names = {f: [by[i].label if by[i].svn else by[i].summary for i in reversed(ids)] for f, ids in got.items()}
    assert names["top"] == ["r1", "r2"]  # the reindent of line 2 in "successor" is whitespace
    assert names["rest"][:2] == ["r1", "r2"] and names["rest"][3:] == ["successor", "later"]
    assert by[got["rest"][2]].release == REL_B


def test_provenance_json_and_its_cache(toy, tmp_path):
    _, _, pins, st = toy
    files = {REL_B: ["f.c", "g.c"], REL_C: ["src/f.c"]}
    p = h.provenance(st, files, tmp_path, workers=2)
    d = p.json_of(REL_B, "f.c")
    assert d["lines"] == [0, 1, 0, 1, 2]
    assert [r["svn"] for r in d["revisions"]] == [1, 2, None]
    assert d["revisions"][2] == {"id": pins[REL_B], "svn": None, "date": "2013-03-04",
                                 "summary": "rel-b: the released tree (https://example.invalid/b at "
                                            f"{pins[REL_B][:12]})"}
    assert list(tmp_path.glob("blame-*.json"))
    again = h.provenance(st, files, tmp_path)
    assert again.seconds == 0.0 and again.lines == p.lines


def test_history_cli_without_histories_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ARCHIVE_ORIGINAL", str(tmp_path / "empty"))
    assert main(["history", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--from-bundle" in err


# --- the real histories -----------------------------------------------------------------------

def _bundles() -> Path:
    for d in BUNDLES:
        if all((d / f"{r}.bundle").is_file() for r in h.LINEAGE):
            return d
    why = f"the release histories (git bundles) are not in {' or '.join(map(str, BUNDLES))}"
    if releases_required():
        pytest.fail(f"{why} (ARCHIVE_REQUIRE_RELEASES=1)")
    pytest.skip(why)


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    bundles = _bundles()
    from archive.manifest import load_all
    manifests = load_all()
    if not (ORIGINAL / "alexnet-2012" / "layers").is_dir():
        pytest.skip("alexnet-2012 is not fetched (its diaries date the 2012 commit)")
    base = tmp_path_factory.mktemp("real-history")
    original = base / "original"
    for r in h.LINEAGE:
        h.fetch_bundle(r, manifests[r].commit, bundles / f"{r}.bundle", original)
    (original / "alexnet-2012").symlink_to(ORIGINAL / "alexnet-2012")
    stages = h.default_stages(manifests, list(h.LINEAGE), original)
    return manifests, original, h.stitch(stages, original, base / "stitched.git")


def test_real_stitched_history(real):
    manifests, original, st = real
    assert len(st.revisions) == 211
    svn = [r.svn for r in st.revisions if r.release == "cuda-convnet-r561"]
    assert len(svn) == 170 and svn[0] == 1 and svn[-1] == 561 and svn == sorted(svn)
    snap = next(r for r in st.revisions if r.release == "alexnet-2012")
    assert snap.day == "2013-03-04" and "layer-params-184" in snap.message
    for r, m in manifests.items():  # the stitched commit holds the upstream tree, file by file
        stitched_tree = git(st.path, "rev-parse", f"{st.pinned[r]}^{{tree}}")
        assert stitched_tree == git(h.history_dir(original, r), "rev-parse", f"{m.commit}^{{tree}}")
        rows = git(st.path, "ls-tree", "-r", st.pinned[r]).splitlines()
        blobs = {row.split("\t", 1)[1]: row.split()[2] for row in rows}
        assert blobs == {p: e.blob for p, e in m.files.items()}


def test_real_layer_cu_counts_and_schema(real, tmp_path):
    _, _, st = real
    p = h.provenance(st, {"alexnet-2012": ["src/layer.cu"]}, tmp_path)
    d = json.loads(json.dumps(p.json_of("alexnet-2012", "src/layer.cu")))
    assert set(d) == {"lines", "revisions"} and len(d["lines"]) == 2002
    for rev in d["revisions"]:
        assert set(rev) == {"id", "svn", "date", "summary"}
        assert len(rev["id"]) == 40 and (rev["svn"] is None or isinstance(rev["svn"], int))
        assert len(rev["date"]) == 10 and rev["date"][4] == "-"
    new = [i for i in d["lines"] if d["revisions"][i]["svn"] is None]
    assert len(new) == 1075 and len(d["lines"]) - len(new) == 927
    assert all(i < len(d["revisions"]) for i in d["lines"])


def test_fetch_history_from_a_git_directory_and_a_url(toy, tmp_path, monkeypatch):
    base, _, pins, _ = toy
    out = h.fetch_history(REL_A, pins[REL_A], base / "up-a", tmp_path, "git")
    assert "history of 2 commits" in out and h.has_history(tmp_path, REL_A, pins[REL_A])
    monkeypatch.setenv("ARCHIVE_GIT_URL", f"file://{base}/up-{{repo}}")
    assert h.git_url("https://example.invalid/someone/c") == f"file://{base}/up-c"
    out = h.fetch_history(REL_C, pins[REL_C], h.git_url("https://example.invalid/someone/c"), tmp_path, "url")
    assert "history of 2 commits" in out
    with pytest.raises(h.UserError, match="cannot fetch the history"):
        h.fetch_history(REL_B, "1" * 40, base / "up-b", tmp_path / "other", "git")


def test_fetch_cli_from_bundle_installs_history_and_tree(tmp_path, monkeypatch, capsys):
    """`archive fetch RELEASE --from-bundle FILE` on a made-up release with its manifest."""
    from archive.manifest import from_git, write as write_manifest
    repo = tmp_path / "up"
    repo.mkdir()
    git(repo, "init", "-q")
    commit(repo, {"a.txt": "one\n"}, "first", "2011-01-01T12:00:00+00:00")
    pin = commit(repo, {"a.txt": "one\ntwo\n", "b/c.txt": "three\n"}, "second", "2011-02-01T12:00:00+00:00")
    git(repo, "branch", "-q", "-f", "made-up", pin)
    git(repo, "bundle", "create", "-q", str(tmp_path / "m.bundle"), "refs/heads/made-up")
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    write_manifest(from_git(repo / ".git", "made-up", pin, "https://example.invalid/x/made-up",
                            "made up", "made up"), manifests)
    monkeypatch.setenv("ARCHIVE_RELEASES_DIR", str(manifests))
    monkeypatch.setenv("ARCHIVE_ORIGINAL", str(tmp_path / "original"))
    assert main(["fetch", "made-up", "--from-bundle", str(tmp_path / "m.bundle")]) == 0
    out = capsys.readouterr().out
    assert "history of 2 commits" in out and "installed 2 files" in out
    assert (tmp_path / "original/made-up/b/c.txt").read_text() == "three\n"
    assert h.has_history(tmp_path / "original", "made-up", pin)
    assert main(["fetch", "made-up", "--from-bundle", str(tmp_path / "nope.bundle")]) == 2
    assert main(["fetch", "--from-bundle", str(tmp_path / "m.bundle")]) == 2  # no RELEASE
