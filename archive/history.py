"""The public history of the releases, joined into one git repository, and who wrote each line.

Each pinned release's history is kept as git objects in ``original/.history/<release>.git`` (a
bare repository; git-ignored like the rest of ``original/``), brought there by
``python -m archive fetch RELEASE --from-bundle FILE`` (:func:`fetch_bundle`). Git's object ids
verify every commit and tree down to the pinned commit id, which the branch must name; the tree
itself is then installed and checked file by file against the manifest as for any other source.

:func:`stitch` joins the histories in lineage order into one repository, as Spinellis' Unix
history repository joins releases and version-control histories. A *full* stage replays every
ancestor of the pinned commit (trees as they were, parents mapped: r1 ... r561); a *snapshot*
stage is one commit holding the pinned tree (the 2012 release, whose own repository has no
development history), dated by what the release itself records. The first commit of each stage
gets the last commit of the previous stage as its parent. Every commit keeps its upstream id,
SVN revision and original date in trailers. The trees are the upstream tree objects themselves,
so each pinned release's stitched commit holds exactly its upstream tree.

:func:`provenance` asks git who wrote each line (``git blame -w -M -C -C``) of every file of
every release, at that release's stitched commit, in parallel over files, and caches the answer
on disk keyed by the pinned ids (:data:`VERSION`), so a site build computes it once. A history
that follows a snapshot is also replayed on a side line (``refs/archive/view/<release>``) whose
first commit holds the older release's files the snapshot lacks, and its files are blamed there
(:func:`_views`): cuda-convnet2's cudaconv3 descends from r561's cudaconv2, which the 2012 tree
does not hold. :func:`function_history` lists the commits that changed each function.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from port.errors import UserError
from port.util import atomic_write_bytes

VERSION = 2  # bump when the stitched repository or the blame would come out differently
HISTORY_DIR = ".history"
BLAME_OPTIONS = ("-w", "-M", "-C", "-C")
SNAPSHOT = "snapshot"
FULL = "full"
SVN_RE = re.compile(r"^git-svn-id: \S+@(\d+) ", re.M)
TRAILER_RE = re.compile(r"^[A-Za-z0-9-]+: ")
#: The releases whose own repository holds no development history: one commit, dated from the
#: release (``"diaries"``: the last date its ``layers/`` cfg diaries record) or a fixed date.
SNAPSHOTS = {"alexnet-2012": "diaries"}
#: The pinned releases in lineage order (as conf.py's ``archive_release_order``).
LINEAGE = ("cuda-convnet-r561", "alexnet-2012", "cuda-convnet2")


def lineage_order(manifests: dict) -> list[str]:
    """The releases of ``manifests`` in lineage order: :data:`LINEAGE`, then the others by date."""
    order = [r for r in LINEAGE if r in manifests]
    return order + sorted((r for r in manifests if r not in order), key=lambda r: manifests[r].commit_date)


def _git(gdir: Path | str, *args: str, input: bytes | None = None, env: dict | None = None,
         check: bool = True) -> bytes:
    run = subprocess.run(["git", f"--git-dir={gdir}", *args], input=input, capture_output=True,
                         env=env)
    if check and run.returncode != 0:
        raise UserError(f"{gdir}: git {' '.join(args[:2])} failed: "
                        f"{run.stderr.decode(errors='replace').strip()}")
    return run.stdout


# --- the histories of the releases --------------------------------------------------------------

def history_root(original: Path) -> Path:
    return Path(original) / HISTORY_DIR


def history_dir(original: Path, release: str) -> Path:
    return history_root(original) / f"{release}.git"


def has_history(original: Path, release: str, commit: str) -> bool:
    """The release's history is there and its branch names the pinned commit."""
    gdir = history_dir(original, release)
    if not (gdir / "HEAD").is_file():
        return False
    run = subprocess.run(["git", f"--git-dir={gdir}", "rev-parse", "--verify", "-q",
                          f"refs/heads/{release}^{{commit}}"], capture_output=True)
    return run.returncode == 0 and run.stdout.decode().strip() == commit


def fetch_history(release: str, commit: str, source: Path | str, original: Path,
                  kind: str = "bundle") -> str:
    """Bring ``release``'s history into ``original/.history/<release>.git`` from a git bundle
    (``kind="bundle"``: it must hold ``refs/heads/<release>`` at the pinned ``commit``), a local
    git directory (``"git"``) or a URL (``"url"``; both fetched by the pinned id).

    Git checks every object's hash as it indexes the pack, and ``fsck`` that every object of the
    history is there and well formed, down to the pinned id. The repository is built beside its
    final place and renamed into it, so a failed fetch leaves the previous one as it was."""
    if kind == "bundle" and not Path(source).is_file():
        raise UserError(f"{source}: no such file (expected a git bundle of {release})")
    root = history_root(original)
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(f".{release}.git-*"):  # what a killed fetch left
        shutil.rmtree(stale, ignore_errors=True)
    target = history_dir(original, release)
    if has_history(original, release, commit):
        return f"{release}: history already installed ({target}), branch at {commit[:12]}"
    where = str(Path(source).resolve()) if kind != "url" else str(source)
    tmp = Path(tempfile.mkdtemp(prefix=f".{release}.git-", dir=root))
    try:
        _git(tmp, "init", "-q", "--bare")
        if kind == "bundle":
            heads = _git(tmp, "bundle", "list-heads", where, check=False).decode()
            if f"refs/heads/{release}" not in heads.split():
                raise UserError(f"{source}: not a git bundle holding refs/heads/{release}")
            want = f"refs/heads/{release}"
        else:
            want = commit
        run = subprocess.run(["git", f"--git-dir={tmp}", "fetch", "-q", "--no-tags", where,
                              f"{want}:refs/heads/{release}"], capture_output=True)
        if run.returncode != 0:
            raise UserError(f"{source}: cannot fetch the history of {release} at {commit[:12]} "
                            f"({run.stderr.decode(errors='replace').strip().splitlines()[-1:]})")
        got = _git(tmp, "rev-parse", f"refs/heads/{release}").decode().strip()
        if got != commit:
            raise UserError(f"{source}: refs/heads/{release} is {got}, not the pinned commit "
                            f"{commit} of the manifest")
        _git(tmp, "fsck", "--no-dangling", "--no-progress", f"refs/heads/{release}")
        _git(tmp, "symbolic-ref", "HEAD", f"refs/heads/{release}")
        n = len(_git(tmp, "rev-list", f"refs/heads/{release}").split())
        if target.exists():
            shutil.rmtree(target)
        os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return (f"{release}: history of {n} commits installed from {source} into {target}, "
            f"verified down to {commit[:12]}")


def fetch_bundle(release: str, commit: str, bundle: Path, original: Path) -> str:
    """:func:`fetch_history` from a git bundle."""
    return fetch_history(release, commit, bundle, original, "bundle")


def git_url(upstream: str) -> str:
    """Where ``git fetch`` finds an upstream repository: ``$ARCHIVE_GIT_URL`` (a template with
    ``{owner}`` and ``{repo}``, for tests) or the upstream URL with ``.git``."""
    parts = upstream.rstrip("/").split("/")
    template = os.environ.get("ARCHIVE_GIT_URL")
    if template:
        return template.format(owner=parts[-2], repo=parts[-1].removesuffix(".git"))
    return upstream.rstrip("/").removesuffix(".git") + ".git"


# --- the stitched repository --------------------------------------------------------------------

@dataclass(frozen=True)
class Stage:
    release: str
    commit: str            # the pinned commit
    upstream: str          # the upstream repository's URL
    mode: str = FULL       # FULL: every ancestor; SNAPSHOT: one commit of the pinned tree
    date: str = ""         # SNAPSHOT: its date (YYYY-MM-DD)
    why: str = ""          # SNAPSHOT: how the date was chosen, for the commit message


@dataclass
class Revision:
    """One commit of the stitched repository."""
    id: str                # the stitched commit
    upstream: str          # the upstream commit id
    release: str           # the stage it belongs to
    svn: int | None
    author: str
    email: str
    date: str              # author date, ISO 8601
    summary: str
    message: str           # the upstream message (without the trailers added here)
    parents: list[str] = field(default_factory=list)   # stitched ids
    pinned: bool = False   # the pinned commit of its release

    @property
    def day(self) -> str:
        return self.date[:10]

    @property
    def label(self) -> str:
        if self.svn is not None:
            return f"r{self.svn}"
        return self.release if self.pinned and self.release in SNAPSHOTS else self.upstream[:8]

    @property
    def slug(self) -> str:
        """The revision's page name under ``revisions/``."""
        return self.label


@dataclass
class Stitched:
    path: Path                              # the git directory
    revisions: list[Revision]               # parents before children
    pinned: dict[str, str]                  # release → stitched id of its pinned commit
    views: dict[str, str] = field(default_factory=dict)     # release → tip of its view line
    view_map: dict[str, str] = field(default_factory=dict)  # view commit → main-line commit

    def by_id(self) -> dict[str, Revision]:
        return {r.id: r for r in self.revisions}


def diary_date(release_dir: Path) -> tuple[str, str] | None:
    """The last date the release's cfg diaries record (checkpoint names), and which file."""
    from archive.experiment_history import load_experiments
    layers = Path(release_dir) / "layers"
    if not layers.is_dir():
        return None
    t = load_experiments(layers)
    found = [(c.date, e.params_path) for e in t.experiments for c in e.diary.checkpoints]
    return max(found) if found else None


def default_stages(manifests: dict, order: list[str], original: Path,
                   snapshots: dict[str, str] | None = None) -> list[Stage]:
    """The stages of the pinned releases in lineage ``order``."""
    snapshots = SNAPSHOTS if snapshots is None else snapshots
    out = []
    for r in order:
        m = manifests[r]
        how = snapshots.get(r)
        if how is None:
            out.append(Stage(r, m.commit, m.upstream))
            continue
        if how == "diaries":
            found = diary_date(Path(original) / r)
            if found is None:
                raise UserError(f"{original}/{r}/layers: no diary dates found to date the {r} "
                                "snapshot (is the release fetched?)")
            date, where = found
            why = (f"Dated {date}: the last date the release's cfg diaries record (a checkpoint "
                   f"of that day named in {where}), the latest trace of the working copy in use. "
                   "The code may have changed up to then; when each line was written is not "
                   "recorded, only that no public revision before held it.")
        else:
            date, why = how, f"Dated {how} (configured)."
        out.append(Stage(r, m.commit, m.upstream, SNAPSHOT, date, why))
    return out


def stages_key(stages: list[Stage]) -> str:
    text = json.dumps([asdict(s) for s in stages] + [VERSION], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _parse_log(raw: bytes) -> list[dict]:
    """Records of ``git log --format=%H%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B%x01``."""
    out = []
    for rec in raw.decode("utf-8", "replace").split("\x01"):
        rec = rec.lstrip("\n")
        if not rec:
            continue
        h, p, an, ae, ad, cn, ce, cd, body = rec.split("\x00", 8)
        out.append(dict(id=h, parents=p.split(), an=an, ae=ae, ad=ad, cn=cn, ce=ce, cd=cd,
                        body=body.rstrip("\n")))
    return out


_LOG_FORMAT = "--format=%H%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B%x01"


def _with_trailers(body: str, trailers: list[tuple[str, str]]) -> str:
    lines = [f"{k}: {v}" for k, v in trailers]
    paras = body.rstrip("\n").split("\n\n")
    last = paras[-1].splitlines() if paras and body.strip() else []
    if last and len(paras) > 1 and all(TRAILER_RE.match(x) for x in last):
        return body.rstrip("\n") + "\n" + "\n".join(lines) + "\n"
    return (body.rstrip("\n") + "\n\n" if body.strip() else "") + "\n".join(lines) + "\n"


def stitch(stages: list[Stage], original: Path, out: Path, *, bare: bool = True) -> Stitched:
    """Write the stitched repository into ``out`` (which must not exist or be empty): branch
    ``main`` through every stage, a tag per release at its pinned commit."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out}: exists and is not empty (give a new folder)")
    for s in stages:
        if not has_history(original, s.release, s.commit):
            raise UserError(f"{s.release}: no history in {history_dir(original, s.release)} "
                            f"(`python -m archive fetch {s.release} --from-bundle FILE`)")
    out.mkdir(parents=True, exist_ok=True)
    init = ["init", "-q", "--bare"] if bare else ["init", "-q"]
    subprocess.run(["git", *init, "-b", "main", str(out)], check=True, capture_output=True)
    gdir = out if bare else out / ".git"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    revisions: list[Revision] = []
    pinned: dict[str, str] = {}
    made: dict[str, tuple[str, dict]] = {}
    tip: str | None = None
    for s in stages:
        src = history_dir(original, s.release)
        _git(gdir, "fetch", "-q", "--no-tags", str(src.resolve()), f"{s.commit}:refs/upstream/{s.release}")
        if s.mode == SNAPSHOT:
            recs = _parse_log(_git(gdir, "log", "-1", _LOG_FORMAT, s.commit))
            first = _parse_log(_git(gdir, "log", "--max-parents=0", "-1", _LOG_FORMAT, s.commit))[0]
            r = recs[0]
            msg = (f"{s.release}: the released tree ({s.upstream} at {s.commit[:12]})\n\n"
                   f"{s.why}\n\nThe tree is that of the pinned upstream commit ({r['cd'][:10]}, "
                   f"\"{r['body'].splitlines()[0] if r['body'] else ''}\"); its author line is that of "
                   f"the upstream commit that first published the code ({first['id'][:12]}, "
                   f"{first['ad'][:10]}), its committer line that of the pinned commit.")
            trailers = [("Upstream-repository", s.upstream), ("Upstream-commit", s.commit),
                        ("Original-date", r["cd"]), ("Date-chosen", s.date)]
            e = dict(env, GIT_AUTHOR_NAME=first["an"], GIT_AUTHOR_EMAIL=first["ae"],
                     GIT_AUTHOR_DATE=f"{s.date}T00:00:00+00:00", GIT_COMMITTER_NAME=r["cn"],
                     GIT_COMMITTER_EMAIL=r["ce"], GIT_COMMITTER_DATE=r["cd"])
            args = ["commit-tree", f"{s.commit}^{{tree}}"] + (["-p", tip] if tip else [])
            new = _git(gdir, *args, input=_with_trailers(msg, trailers).encode(), env=e).decode().strip()
            revisions.append(Revision(new, s.commit, s.release, None, first["an"], first["ae"],
                                      f"{s.date}T00:00:00+00:00", msg.splitlines()[0], msg,
                                      [tip] if tip else [], True))
            tip = pinned[s.release] = new
            continue
        mapped: dict[str, str] = {}
        recs = _parse_log(_git(gdir, "log", "--reverse", "--topo-order", _LOG_FORMAT, s.commit))
        for r in recs:
            parents = [mapped[p] for p in r["parents"]] or ([tip] if tip else [])
            m = SVN_RE.search(r["body"])
            svn = int(m.group(1)) if m else None
            trailers = [("Upstream-repository", s.upstream), ("Upstream-commit", r["id"])]
            if svn is not None:
                trailers.append(("SVN-revision", str(svn)))
            trailers.append(("Original-date", r["ad"]))
            e = dict(env, GIT_AUTHOR_NAME=r["an"], GIT_AUTHOR_EMAIL=r["ae"], GIT_AUTHOR_DATE=r["ad"],
                     GIT_COMMITTER_NAME=r["cn"], GIT_COMMITTER_EMAIL=r["ce"],
                     GIT_COMMITTER_DATE=r["cd"])
            args = ["commit-tree", f"{r['id']}^{{tree}}"]
            for p in parents:
                args += ["-p", p]
            message = _with_trailers(r["body"], trailers)
            new = _git(gdir, *args, input=message.encode(), env=e).decode().strip()
            made[new] = (message, e)
            mapped[r["id"]] = new
            summary = r["body"].splitlines()[0] if r["body"] else ""
            revisions.append(Revision(new, r["id"], s.release, svn, r["an"], r["ae"], r["ad"],
                                      summary, r["body"], parents, r["id"] == s.commit))
        tip = pinned[s.release] = mapped[s.commit]
    _git(gdir, "update-ref", "refs/heads/main", tip)
    for s in stages:
        _git(gdir, "tag", s.release, pinned[s.release])
        _git(gdir, "update-ref", "-d", f"refs/upstream/{s.release}")
    st = Stitched(gdir, revisions, pinned)
    _views(st, stages, made, env)
    if not bare:
        subprocess.run(["git", "-C", str(out), "reset", "-q", "--hard", "main"], check=True,
                       capture_output=True, env=env)
    _write_revisions(st)
    return st


def _union_tree(gdir: Path, base: str, extra: str, env: dict) -> str:
    """The tree of ``base`` plus every file of ``extra`` at a path ``base`` does not have."""
    with tempfile.TemporaryDirectory() as tmp:
        e = dict(env, GIT_INDEX_FILE=str(Path(tmp) / "index"))
        _git(gdir, "read-tree", base, env=e)
        have = set(_git(gdir, "ls-tree", "-r", "-z", "--name-only", base).split(b"\0"))
        rows = [row for row in _git(gdir, "ls-tree", "-r", "-z", extra).split(b"\0")
                if row and row.split(b"\t", 1)[1] not in have]
        _git(gdir, "update-index", "-z", "--index-info", input=b"\0".join(rows) + b"\0", env=e)
        return _git(gdir, "write-tree", env=e).decode().strip()


def _views(st: Stitched, stages: list[Stage], made: dict[str, tuple[str, dict]], env: dict) -> None:
    """A side line per history that follows a snapshot (``refs/archive/view/<release>``): the
    same commits, on a merge of the snapshot and the history before it whose tree also holds
    the older files the snapshot lacks. Blamed there, a file that descends from such a file
    (cuda-convnet2's cudaconv3 from r561's cudaconv2, absent from the 2012 tree) is credited
    to the revisions that wrote it, not to the first commit that holds it again."""
    for k, s in enumerate(stages):
        if k < 2 or s.mode != FULL or stages[k - 1].mode != SNAPSHOT:
            continue
        snap, older = st.pinned[stages[k - 1].release], st.pinned[stages[k - 2].release]
        tree = _union_tree(st.path, snap, older, env)
        e = dict(env, GIT_AUTHOR_NAME="archive", GIT_AUTHOR_EMAIL="archive@localhost",
                 GIT_COMMITTER_NAME="archive", GIT_COMMITTER_EMAIL="archive@localhost",
                 GIT_AUTHOR_DATE=f"{stages[k - 1].date}T00:00:00+00:00",
                 GIT_COMMITTER_DATE=f"{stages[k - 1].date}T00:00:00+00:00")
        msg = (f"View for blame (not on main): {stages[k - 1].release} with the files of "
               f"{stages[k - 2].release} it does not hold\n")
        view = _git(st.path, "commit-tree", tree, "-p", snap, "-p", older, input=msg.encode(),
                    env=e).decode().strip()
        st.view_map[view] = snap
        mapped = {snap: view}
        for r in st.revisions:
            if r.release != s.release:
                continue
            message, e = made[r.id]
            args = ["commit-tree", f"{r.id}^{{tree}}"]
            for p in r.parents:
                args += ["-p", mapped.get(p, p)]
            new = _git(st.path, *args, input=message.encode(), env=e).decode().strip()
            mapped[r.id] = new
            st.view_map[new] = r.id
        st.views[s.release] = mapped[st.pinned[s.release]]
        _git(st.path, "update-ref", f"refs/archive/view/{s.release}", st.views[s.release])


def _write_revisions(st: Stitched) -> None:
    data = json.dumps({"version": VERSION, "pinned": st.pinned, "views": st.views,
                       "view_map": st.view_map,
                       "revisions": [asdict(r) for r in st.revisions]}).encode()
    atomic_write_bytes(Path(st.path) / "archive-revisions.json", lambda f: f.write(data))


def load_stitched(gdir: Path) -> Stitched | None:
    f = Path(gdir) / "archive-revisions.json"
    if not f.is_file():
        return None
    d = json.loads(f.read_text())
    if d.get("version") != VERSION:
        return None
    return Stitched(Path(gdir), [Revision(**r) for r in d["revisions"]], d["pinned"], d["views"],
                    d["view_map"])


def cached_stitch(stages: list[Stage], original: Path, cache_dir: Path) -> Stitched:
    """The stitched repository of ``stages`` in ``cache_dir/stitched-<key>.git``, made once."""
    cache_dir = Path(cache_dir)
    target = cache_dir / f"stitched-{stages_key(stages)}.git"
    got = load_stitched(target) if target.is_dir() else None
    if got is not None:
        return got
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".stitch-", dir=cache_dir))
    try:
        stitch(stages, original, tmp / "repo.git")
        if target.exists():
            shutil.rmtree(target)
        os.rename(tmp / "repo.git", target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for old in cache_dir.glob("stitched-*.git"):  # earlier pins: no longer needed
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    got = load_stitched(target)
    assert got is not None
    return got


# --- blame --------------------------------------------------------------------------------------

def blame(gdir: Path, commit: str, path: str) -> list[str]:
    """The stitched commit that wrote each line of ``path`` at ``commit`` (git's porcelain)."""
    raw = _git(gdir, "blame", *BLAME_OPTIONS, "--porcelain", commit, "--", path)
    out: list[str] = []
    expect_header = True
    for line in raw.split(b"\n"):
        if line.startswith(b"\t"):
            expect_header = True
            continue
        if expect_header and len(line) >= 40 and b" " in line:
            parts = line.split(b" ")
            if len(parts) >= 3 and len(parts[0]) == 40:
                out.append(parts[0].decode())
                expect_header = False
    return out


def last_change(gdir: Path, commit: str, path: str) -> str:
    """The stitched commit that last changed ``path`` (for files blame cannot split in lines)."""
    return _git(gdir, "log", "-1", "--format=%H", commit, "--", path).decode().strip()


@dataclass
class Provenance:
    """Who wrote each line of every file: per (release, path), the stitched id of each line."""
    stitched: Stitched
    lines: dict[tuple[str, str], list[str]]
    seconds: float = 0.0            # how long the blame took when it was computed (0: cached)

    def json_of(self, release: str, path: str) -> dict:
        """The published form: ``{"lines": [...], "revisions": [...]}`` (issue 21's schema)."""
        by_id = self.stitched.by_id()
        ids = self.lines[(release, path)]
        order = {r.id: i for i, r in enumerate(self.stitched.revisions)}
        used = sorted(set(ids), key=lambda i: order[i])
        index = {i: k for k, i in enumerate(used)}
        return {"lines": [index[i] for i in ids],
                "revisions": [{"id": by_id[i].upstream, "svn": by_id[i].svn, "date": by_id[i].day,
                               "summary": by_id[i].summary} for i in used]}


def provenance(stitched: Stitched, files: dict[str, Iterable[str]], cache_dir: Path,
               binary: Iterable[tuple[str, str]] = (), workers: int | None = None,
               progress: bool = False, sizes: dict[tuple[str, str], int] | None = None
               ) -> Provenance:
    """Blame every ``files[release]`` path at the release's stitched commit, or the tip of its
    view line where it has one (:func:`_views`; its commits map back to the main line) (files in
    ``binary`` get one entry: the commit that last changed them), on all cores, cached in
    ``cache_dir/blame-<stitched tip>.json``."""
    import time
    cache_dir = Path(cache_dir)
    key = hashlib.sha256(json.dumps([VERSION, stitched.pinned, stitched.views, BLAME_OPTIONS,
                                     {r: sorted(p) for r, p in files.items()}],
                                    sort_keys=True).encode()).hexdigest()[:16]
    cache = cache_dir / f"blame-{key}.json"
    if cache.is_file():
        d = json.loads(cache.read_text())
        return Provenance(stitched, {(r, p): v for r, p, v in d}, 0.0)
    binary = set(binary)
    jobs = [(r, p) for r, ps in files.items() for p in ps]
    t0 = time.perf_counter()

    def one(job: tuple[str, str]) -> list[str]:
        r, p = job
        commit = stitched.views.get(r, stitched.pinned[r])
        ids = [last_change(stitched.path, commit, p)] if job in binary else blame(stitched.path, commit, p)
        return [stitched.view_map.get(i, i) for i in ids]

    # the biggest files first, so the last one to finish is a small one
    sizes = sizes or {}
    out: dict[tuple[str, str], list[str]] = {}
    with concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count() or 2) as pool:
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=len(jobs), desc="git blame", unit="file", leave=False)
        futs = {pool.submit(one, j): j for j in sorted(jobs, key=lambda j: -sizes.get(j, 0))}
        for f in concurrent.futures.as_completed(futs):
            out[futs[f]] = f.result()
            if bar is not None:
                bar.update()
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    cache_dir.mkdir(parents=True, exist_ok=True)
    data = json.dumps([[r, p, v] for (r, p), v in sorted(out.items())]).encode()
    atomic_write_bytes(cache, lambda f: f.write(data))
    for old in cache_dir.glob("blame-*.json"):
        if old != cache:
            old.unlink(missing_ok=True)
    return Provenance(stitched, out, seconds)


# --- functions through the revisions ------------------------------------------------------------

_HUNK_RE = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def function_history(gdir: Path, commit: str, path: str, nlines: int,
                     spans: list[tuple[str, int, int]]) -> dict[str, list[str]]:
    """The commits that changed each function of ``path`` at ``commit``, newest first.

    ``spans``: (id, first line, last line) of each function in that version. Git lists every
    first-parent commit that changed the file, following renames, with its hunks
    (``git log -w -U0 --follow``); walking back from ``commit``, each commit's hunks are mapped
    onto the functions through the line numbers of the version after it, and the lines it
    replaced are given, in the version before, to the function its new lines belong to (a
    deletion to the function around it). A function is followed as far back as its lines go."""
    raw = _git(gdir, "log", "--first-parent", "-m", "--follow", "-M", "-w", "-U0", "--no-color",
               "--format=@@@%H", commit, "--", path)
    commits: list[tuple[str, list[tuple[int, int, int, int]], bool]] = []
    for line in raw.split(b"\n"):
        if line.startswith(b"@@@"):
            commits.append((line[3:].decode(), [], False))
        elif line.startswith(b"@@ ") and commits:
            m = _HUNK_RE.match(line)
            if m:
                os_, ol, ns, nl = (int(m.group(1)), int(m.group(2) or 1), int(m.group(3)),
                                   int(m.group(4) or 1))
                commits[-1][1].append((os_, ol, ns, nl))
        elif line.startswith(b"--- /dev/null") and commits:
            cid, hunks, _ = commits[-1]
            commits[-1] = (cid, hunks, True)
    owner: list[str | None] = [None] * (nlines + 2)
    for fid, first, last in sorted(spans, key=lambda s: s[2] - s[1], reverse=True):
        for n in range(max(1, first), min(nlines, last) + 1):
            owner[n] = fid          # the innermost (shortest) span wins
    out: dict[str, list[str]] = defaultdict(list)
    for cid, hunks, added in commits:
        touched: set[str] = set()
        before: list[str | None] = [None]
        pos = 1
        for os_, ol, ns, nl in sorted(hunks, key=lambda h: h[2]):
            start = ns if nl > 0 else ns + 1
            before.extend(owner[pos:start])
            new = [o for o in owner[ns:ns + nl] if o] if nl > 0 else []
            if nl > 0:
                touched.update(new)
                fill = Counter(new).most_common(1)[0][0] if new else None
            else:
                a = owner[ns] if 1 <= ns < len(owner) else None
                b = owner[ns + 1] if ns + 1 < len(owner) else None
                fill = a if a is not None and a == b else None
                if fill is not None:
                    touched.add(fill)
            before.extend([fill] * ol)
            pos = start + nl if nl > 0 else start
        before.extend(owner[pos:])
        for fid in touched:
            out[fid].append(cid)
        owner = before + [None]
        if added:
            break
    return dict(out)
