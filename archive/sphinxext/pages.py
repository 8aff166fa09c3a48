"""The build driver: loads the :class:`Site` once per build, enforces integrity, and hands
Sphinx every generated page (``html-collect-pages``).

Pages whose HTML did not change since the last build are not handed over again (Sphinx would
re-render and rewrite all of them): each page's body is hashed together with everything else
that shapes the page (theme, static files, project title) and compared with the hash the
previous build recorded in the build cache (:class:`highlight.Cache`, which also holds the
highlighting and the experiments pages). This module draws nothing itself.
"""
from __future__ import annotations

import hashlib
import shutil
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sphinx
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging

from archive import ORIGINAL, RELEASES_DIR, ROOT, xref
from archive.manifest import load_all
from archive.sphinxext import (cfgxref, coverage, experiment_pages, fulltext, history, idents, integrity, revisions, search,
                               sidebyside, sources, versions)
from archive.sphinxext.annotations import ArchiveDomain, rendered_bodies
from archive.sphinxext.highlight import Cache
from archive.sphinxext.markup import HTML, html
from archive.sphinxext.model import Site, page_of_port, page_of_source, page_of_versions, raw_of_source
from port.util import atomic_write_bytes

logger = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
THEME = HERE / "theme"
_SITES: "weakref.WeakKeyDictionary[Sphinx, Site]" = weakref.WeakKeyDictionary()


def _path(app: Sphinx, value: str, default: Path) -> Path:
    return (Path(app.confdir) / value).resolve() if value else default


def load_site(app: Sphinx) -> Site:
    """Everything the pages are computed from, read fresh from disk on every build."""
    cfg = app.config
    root = _path(app, cfg.archive_root, ROOT)
    manifests = load_all(_path(app, cfg.archive_manifests_dir, RELEASES_DIR))
    port_paths = [_path(app, p, root) for p in cfg.archive_port_paths] or [root / "port"]
    port_paths = [p for p in port_paths if p.exists()]
    refs, divs = xref.scan(port_paths, root) if port_paths else ([], [])
    order = [r for r in cfg.archive_release_order if r in manifests]
    order += sorted((r for r in manifests if r not in order), key=lambda r: manifests[r].commit_date)
    domain: ArchiveDomain = app.env.get_domain("archive")  # type: ignore[assignment]
    return Site(manifests, _path(app, cfg.archive_original_dir, ORIGINAL), root, order, refs, divs,
                port_paths, domain.all_annotations())


def check_integrity(app: Sphinx, env: BuildEnvironment) -> None:
    """``env-updated``: runs on every build, after reading, before anything is written."""
    site = load_site(app)
    domain: ArchiveDomain = env.get_domain("archive")  # type: ignore[assignment]
    integrity.enforce(site, domain.all_links(), app.config.archive_fail_on_integrity)
    _SITES[app] = site


def copy_static(app: Sphinx) -> None:
    """``builder-inited``: put the extension's CSS/JS into ``_static`` (before pages link them)."""
    if app.builder.format != "html":
        return
    dest = Path(app.outdir) / "_static"
    dest.mkdir(parents=True, exist_ok=True)
    for f in STATIC.iterdir():
        if f.is_file():
            shutil.copyfile(f, dest / f.name)


def start_here(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """``html-page-context``: the header's "Start here" goes to the reading order
    (``archive_start_here``), or to the front page where the project has none."""
    start = app.config.archive_start_here
    context["archive_start"] = start if start in app.env.found_docs else app.config.root_doc


def drop_empty_sources(app: Sphinx, exc: Exception | None) -> None:
    """``build-finished``: the site copies no sources (``html_copy_source = False``), but Sphinx
    still makes an empty ``_sources``; the output holds only what a web server needs."""
    src = Path(app.outdir) / "_sources"
    if exc is None and src.is_dir() and not any(src.iterdir()):
        src.rmdir()


def _salt(app: Sphinx) -> str:
    h = hashlib.sha256(f"{sphinx.__version__}:{app.config.project}:"
                       f"{app.config.html_title}:{app.config.html_theme}:{app.config.html_theme_options}".encode())
    for d in (STATIC, THEME):
        for f in sorted(d.iterdir()):
            if f.is_file():
                h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def _write_if_changed(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (atomically, port.util's writer) unless it already holds it."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, lambda f: f.write(data))


def _all_pages(app: Sphinx, site: Site, cache: Cache, tags: idents.Tags | None = None,
               hist: "revisions.SiteHistory | None" = None, hist_why: HTML = HTML(""),
               found: dict[str, Any] | None = None) -> Iterator[tuple[str, str, str, str]]:
    """(pagename, kind, title, body) of every generated page; ``hist``: the joined public
    history (:mod:`revisions`), None (and why) where it is not fetched; ``found`` receives
    ``fn_hist``: each source file's function first lines → their history anchors."""
    cov = coverage.compute(site)
    chains = versions.lineage(site)
    by_file = versions.chains_by_file(chains)
    bodies = rendered_bodies(app)
    hist_links, hist_chains = history.links(site, chains, tags)
    if found is not None:
        found["fn_hist"] = hist_links
    t = experiment_pages.timeline(app.config)
    cfg_links = cfgxref.load(site, Path(app.srcdir), app.config.archive_compat_table, tags,
                             {e.stem for e in t.experiments} if t is not None else set())
    for release in site.order:
        for e in site.files(release):
            chain = by_file.get((release, e.path))
            page = page_of_source(release, e.path)
            origin = None if hist is None else revisions.origin(
                hist, release, e.path, page, revisions.cudaconv3_note(site, release, e.path, chain))
            why = (html('<p class="origin-missing">Who wrote each line is not shown: {}.</p>', hist_why)
                   if hist is None and hist_why else HTML(""))
            title, body = sources.source_page(site, release, e, cache, bodies,
                                              chain, cov.get((release, e.path)),
                                              None if tags is None else tags.get((release, e.path), []),
                                              hist_links.get((release, e.path)), origin, why, cfg_links,
                                              release not in app.config.archive_search_exclude)
            yield page_of_source(release, e.path), "source", title, body
        yield f"releases/{release}/index", "tree", *versions.release_index(site, release, chains, cov)
    yield "releases/index", "tree", *sources.releases_index(site)
    for chain in chains:
        if len(chain.members) > 1:
            yield page_of_versions(chain.key), "diff", *versions.versions_page(site, chain, cache,
                                                                               chain.key in hist_chains)
    yield "versions/index", "diff", *versions.versions_index(site, chains, set(hist_chains))
    fn_revs = {} if hist is None else revisions.function_revisions(site, hist, hist_chains, chains, cache)
    for chain in chains:
        if chain.key in hist_chains:
            got = fn_revs.get(chain.key, {})
            line = None if hist is None else (
                lambda page, fid, got=got: revisions.revisions_line(page, got[fid], hist) if got.get(fid) else HTML(""))
            yield history.page_of_history(chain.key), "diff", *history.history_page(
                site, chain, hist_chains[chain.key], cache, line)
    for pagename, title, body in revisions.pages(site, hist, hist_why, cache, tags, chains):
        yield pagename, "history", title, body
    yield "coverage", "table", *coverage.coverage_page(site, cov)
    yield "divergences", "table", *sidebyside.divergences_page(site)
    for pf in site.port_files:
        got = sidebyside.port_page(site, pf, cache)
        if got:
            yield page_of_port(pf), "port", *got
    yield "port/index", "table", *sidebyside.port_index(site)
    yield "identifiers", "search", *search.search_page()
    yield fulltext.PAGE, "search", *fulltext.search_page(app.config.archive_search_exclude)
    for pagename, title, body in experiment_pages.experiment_pages(app, cache):
        yield pagename, "experiments", title, body


def collect_pages(app: Sphinx) -> Iterator[tuple[str, dict[str, Any], str]]:
    """``html-collect-pages``: every generated page that changed, plus raw files and the index."""
    site = _SITES.get(app) or load_site(app)
    cache = Cache(Path(app.doctreedir) / "archive-highlight.pickle")
    outdir = Path(app.outdir)
    old = cache.recorded("pages", {})
    salt = _salt(app)
    new: dict[str, str] = {}
    written = skipped = 0
    tags = idents.all_tags(site)  # Universal Ctags, once: outlines and the identifier index
    if tags is None:
        logger.info("archive: Universal Ctags is not installed; definitions come from the highlighter "
                    "(apt-get install universal-ctags)")
    hist, hist_why = revisions.load(app, site)
    found: dict[str, Any] = {}
    for pagename, kind, title, body in _all_pages(app, site, cache, tags, hist, hist_why, found):
        key = hashlib.sha256(f"{salt}\0{title}\0{body}".encode("utf-8", "surrogateescape")).hexdigest()
        new[pagename] = key
        if old.get(pagename) == key and (outdir / f"{pagename}.html").is_file():
            skipped += 1
            continue
        written += 1
        yield pagename, {"title": title, "body": body, "archive_generated": True,
                         "archive_kind": kind}, "page.html"
    for release in site.order:
        for e in site.files(release):
            data = site.data(release, e.path)
            if data is not None:
                _write_if_changed(outdir / "releases" / release / raw_of_source(e.path), data)
    revisions.write_files(site, hist, outdir, _write_if_changed)
    # the function histories by definition (for the identifier panel: archive-reading.js)
    _write_if_changed(outdir / "history" / "functions.js", history.functions_js(found.get("fn_hist", {})))
    ids_key = idents.key(site)
    new["identifiers.js"] = ids_key
    if old.get("identifiers.js") != ids_key or not (outdir / "_ids" / "files.js").is_file():
        idents.write(idents.build(site, cache, use_ctags=tags is not None, tags=tags), outdir)
    cache.record("pages", new)
    cache.save()
    logger.info("archive: %d generated pages written, %d unchanged", written, skipped)


def check_site_links(app: Sphinx, exception: BaseException | None) -> None:
    """``build-finished``: warn for each ``{site}`` link whose target this build did not write."""
    if exception is not None or app.builder.format != "html":
        return
    domain: ArchiveDomain = app.env.get_domain("archive")  # type: ignore[assignment]
    for docname, lineno, target in domain.all_site_links():
        if not (Path(app.outdir) / target.partition("#")[0]).is_file():
            logger.warning(f"{{site}} link to {target!r}: no such page in the built site",
                           location=(docname, lineno))    # Sphinx maps the docname to its file
