"""``python -m archive``: fetch, verify, list the pinned releases, and regenerate their manifests.

    python -m archive fetch [RELEASE ...] [--from-git DIR | --from PATH | --from-bundle FILE]
                            [--history] [--force]
    python -m archive history --out DIR
    python -m archive verify [RELEASE ...]
    python -m archive list
    python -m archive manifest --from-git DIR RELEASE [--out DIR]

``fetch`` with no RELEASE handles every release, skipping (without touching the network) those
already installed and verified: that is what ``make original`` runs. A mistake (unknown release,
unreachable network, a source that differs from the manifest) is one line on stderr and exit
code 2. ``fetch --from-bundle`` brings the release's history (a git bundle) into
``original/.history/<release>.git`` and installs its tree from it (``--history`` does the same
from a git directory or upstream); ``history`` writes the histories joined into one git
repository (:mod:`archive.history`). ``verify`` exits 1, naming every file that differs, when an
installed tree is not the release. The work itself is in :mod:`archive.fetch` and
:mod:`archive.verify`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from archive import fetch as fetching, history
from archive.manifest import PINS, pinned_from_git, write as write_manifest
from archive.verify import check_tree, is_installed, summarize
from port.errors import ArgumentParser, UserError, main_guard

PROG = "python -m archive"
EXIT_DIFFERS = 1


def _releases(names: list[str]) -> list[str]:
    known = fetching.known_releases()
    for name in names:
        fetching.load_manifest(name)  # raises, naming the known releases, if unknown
    return names or known


def cmd_fetch(args: argparse.Namespace) -> int:
    if args.from_path is not None and len(args.releases) != 1:
        raise UserError("--from PATH holds one release: name exactly one RELEASE")
    if args.from_bundle is not None:
        if len(args.releases) != 1:
            raise UserError("--from-bundle FILE holds one release's history: name exactly one RELEASE")
        release = _releases(args.releases)[0]
        manifest = fetching.load_manifest(release)
        root = fetching.original_root()
        print(history.fetch_bundle(release, manifest.commit, args.from_bundle, root))
        print(fetching.fetch(release, from_git=history.history_dir(root, release), force=args.force))
        return 0
    if args.history and args.from_path is not None:
        raise UserError("--history needs git objects: give --from-git DIR, --from-bundle FILE or "
                        "no source (upstream), not --from PATH")
    releases = _releases(args.releases)
    if args.from_git is not None and not args.releases:
        gdir = fetching.git_dir(args.from_git)
        releases = [r for r in releases
                    if fetching.has_commit(gdir, fetching.load_manifest(r).commit)]
        if not releases:
            raise UserError(f"{args.from_git}: holds the pinned commit of no release; "
                            f"known: {', '.join(fetching.known_releases())}")
    for release in releases:
        result = fetching.fetch(release, from_git=args.from_git, from_path=args.from_path,
                                force=args.force)
        print(result)
        if args.history:
            manifest = fetching.load_manifest(release)
            source, kind = ((fetching.git_dir(args.from_git), "git") if args.from_git is not None
                            else (history.git_url(manifest.upstream), "url"))
            print(history.fetch_history(release, manifest.commit, source, fetching.original_root(),
                                        kind))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    status = 0
    for release in _releases(args.releases):
        manifest = fetching.load_manifest(release)
        problems = fetching.verify(release)
        if problems:
            status = EXIT_DIFFERS
            for p in problems:
                print(f"{release}/{p}", file=sys.stderr)
            if is_installed(fetching.original_root() / release):
                print(f"{release}: FAILED, {len(problems)} difference"
                      f"{'s' if len(problems) != 1 else ''} from the manifest; "
                      f"`{PROG} fetch {release} --force` restores it", file=sys.stderr)
            else:
                print(f"{release}: not installed; `{PROG} fetch {release}` installs it",
                      file=sys.stderr)
        else:
            summary = summarize(manifest)
            print(f"{release}: OK, {summary.files} files, {summary.bytes} bytes match "
                  f"commit {manifest.commit[:12]}")
    return status


def cmd_history(args: argparse.Namespace) -> int:
    from archive.manifest import load_all
    root = fetching.original_root()
    manifests = load_all(fetching.releases_dir())
    order = history.lineage_order(manifests)
    missing = [r for r in order if not history.has_history(root, r, manifests[r].commit)]
    if missing:
        raise UserError(f"no history for {', '.join(missing)} in {history.history_root(root)}: "
                        f"`{PROG} fetch RELEASE --from-bundle FILE` brings one")
    stages = history.default_stages(manifests, order, root)
    st = history.stitch(stages, root, args.out, bare=False)
    print(f"{args.out}: {len(st.revisions)} commits on branch main; tags "
          + ", ".join(f"{r} = {c[:12]}" for r, c in st.pinned.items()))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    root = fetching.original_root()
    for release in fetching.known_releases():
        manifest = fetching.load_manifest(release)
        target = root / release
        if not is_installed(target):
            state = "not installed"
        else:
            n = len(check_tree(target, manifest))
            state = "installed, verified" if n == 0 else f"installed, {n} differences"
        print(f"{release:20} {manifest.commit[:12]}  {len(manifest.files):4} files  "
              f"{manifest.upstream}  {state}")
    return 0


def cmd_manifest(args: argparse.Namespace) -> int:
    if args.release not in PINS:
        raise UserError(f"unknown release {args.release!r}: pinned releases are "
                        f"{', '.join(PINS)} (archive/manifest.py PINS)")
    gdir = fetching.git_dir(args.from_git)
    commit = PINS[args.release]["commit"]
    if not fetching.has_commit(gdir, commit):
        raise UserError(f"{args.from_git}: does not contain commit {commit} of {args.release}")
    try:
        manifest = pinned_from_git(gdir, args.release)
    except ValueError as e:
        raise UserError(str(e)) from None
    out = Path(args.out) if args.out else fetching.releases_dir()
    out.mkdir(parents=True, exist_ok=True)
    path = write_manifest(manifest, out)
    print(f"{args.release}: wrote {path} ({len(manifest.files)} files, "
          f"commit {commit[:12]} of {manifest.commit_date})")
    return 0


def parser() -> argparse.ArgumentParser:
    # port.errors.ArgumentParser: a usage mistake is a UserError, one line and exit 2 through
    # main_guard, like every other mistake (the archive may import the port; never the reverse).
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    f = sub.add_parser("fetch", help="install releases into original/, checked against their "
                       "manifests (default: every release not yet installed and verified)")
    f.add_argument("releases", nargs="*", metavar="RELEASE")
    src = f.add_mutually_exclusive_group()
    src.add_argument("--from-git", type=Path, metavar="DIR",
                     help="a local git clone or bare repository holding the pinned commit")
    src.add_argument("--from", dest="from_path", type=Path, metavar="PATH",
                     help="a tarball (.tar, .tar.gz) or unpacked folder of one release")
    src.add_argument("--from-bundle", type=Path, metavar="FILE",
                     help="a git bundle of one release's history (refs/heads/<release> at the "
                          "pinned commit): kept in original/.history/<release>.git, the tree "
                          "installed from it")
    f.add_argument("--force", action="store_true",
                   help="fetch again even if the installed release verifies")
    f.add_argument("--history", action="store_true",
                   help="also keep the release's history (every ancestor of the pinned commit) in "
                        "original/.history/<release>.git, from --from-git DIR or upstream (git)")
    f.add_argument("--missing", action="store_true",
                   help="fetch only what is missing or differs (the default; accepted, changes nothing)")
    f.set_defaults(run=cmd_fetch)

    v = sub.add_parser("verify", help="check installed releases against their manifests")
    v.add_argument("releases", nargs="*", metavar="RELEASE")
    v.set_defaults(run=cmd_verify)

    h = sub.add_parser("history", help="write the releases' histories joined into one git "
                       "repository (needs the histories: fetch --from-bundle)")
    h.add_argument("--out", type=Path, metavar="DIR", required=True,
                   help="a new folder for the repository")
    h.set_defaults(run=cmd_history)

    ls = sub.add_parser("list", help="the pinned releases, their commits, installed or not")
    ls.set_defaults(run=cmd_list)

    m = sub.add_parser("manifest", help="regenerate a release manifest from a git directory")
    m.add_argument("release", metavar="RELEASE")
    m.add_argument("--from-git", type=Path, metavar="DIR", required=True,
                   help="a local git clone or bare repository holding the pinned commit")
    m.add_argument("--out", type=Path, metavar="DIR",
                   help="write the manifest here instead of archive/releases/")
    m.set_defaults(run=cmd_manifest)
    return p


@main_guard(PROG)
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
