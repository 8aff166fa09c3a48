"""What the site is built from, loaded once per build, and the site's URL scheme.

A :class:`Site` holds the release manifests (``archive.manifest.load_all``), the fetched trees
under ``original/<release>/``, the port's ``Ports:`` and ``DIVERGES:`` lines
(``archive.xref.scan``) and the annotations read from the documents. Every generated page is
computed from it. It is not a cache of rendered HTML (see :mod:`highlight` and :mod:`pages`).

URL scheme (page names; Sphinx adds ``.html``):

* ``releases/<release>/<path>``  one source page per release file, lines ``#L<n>``;
* ``releases/<release>/index``   the file tree of a release; ``releases/index`` all releases;
* ``versions/<path>``            diffs of one file across releases; ``versions/index``;
* ``port/<module path>``         a port module (``port/layers/weight.py`` → ``port/layers/weight``);
* ``coverage``, ``divergences``, ``identifiers`` (search), ``port/index``.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath

from archive import xref
from archive.manifest import FileEntry, Manifest
from archive.verify import is_installed

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif")


@dataclass(frozen=True)
class Annotation:
    """One ``{annotation}`` directive: where it is written and which lines it is about."""
    docname: str
    source: str      # the document's file path (for error messages)
    lineno: int
    node_id: str
    release: str
    path: str
    first: int
    last: int
    symbol: str

    @property
    def target(self) -> str:
        return f"{self.release}/{self.path}:{self.first}-{self.last}"


parse_target = xref.parse_target  # the one parser of ``<release>/<path>:<first>-<last> [Symbol]``


def page_of_source(release: str, path: str) -> str:
    return f"releases/{release}/{path}"


#: Suffixes a browser renders (and runs scripts in) when it opens the file directly.
RENDERED_SUFFIXES = (".html", ".htm", ".xhtml", ".xht", ".shtml", ".svg", ".svgz", ".xml", ".xsl",
                     ".xslt", ".mht", ".mhtml")


def raw_of_source(path: str) -> str:
    """The name of a release file's raw copy beside its page: the path itself, or ``<path>.txt``
    for a file a browser would render, so that opening it never runs the release's markup
    (``readme.html`` redirects to an external host); its page shows it as text."""
    return f"{path}.txt" if PurePosixPath(path).suffix.lower() in RENDERED_SUFFIXES else path


def page_of_port(port_file: str) -> str:
    p = PurePosixPath(port_file)
    return str(p.with_suffix("")) if p.suffix == ".py" else str(p)


def page_of_versions(key: str) -> str:
    return f"versions/{key}"


def relative(from_page: str, to_page: str, fragment: str = "") -> str:
    """The relative URL from one page to another (page names without ``.html``)."""
    url = posixpath.relpath(to_page + ".html", posixpath.dirname(from_page) or ".")
    return url + (f"#{fragment}" if fragment else "")


def line_fragment(first: int, last: int | None = None) -> str:
    return f"L{first}" if last is None or last == first else f"L{first}-L{last}"


@dataclass
class Site:
    manifests: dict[str, Manifest]
    original: Path
    root: Path
    order: list[str]                       # releases in lineage order (oldest first)
    refs: list[xref.PortsRef]
    divergences: list[xref.Divergence]
    port_paths: list[Path] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)
    _texts: dict[tuple[str, str], str | None] = field(default_factory=dict)

    def present(self, release: str) -> bool:
        return is_installed(self.original / release)

    def files(self, release: str) -> list[FileEntry]:
        return sorted(self.manifests[release].files.values(), key=lambda e: e.path)

    def data(self, release: str, path: str) -> bytes | None:
        f = self.original / release / path
        return f.read_bytes() if f.is_file() else None

    def text(self, release: str, path: str) -> str | None:
        """The file decoded as UTF-8 (undecodable bytes replaced), or None when absent."""
        key = (release, path)
        if key not in self._texts:
            data = self.data(release, path)
            self._texts[key] = None if data is None else data.decode("utf-8", "replace")
        return self._texts[key]

    def is_binary(self, release: str, path: str) -> bool:
        """Not text: an image, or bytes with a NUL (e.g. a pickled file)."""
        if self.is_image(path):
            return True
        data = self.data(release, path)
        return data is not None and b"\0" in data

    def is_image(self, path: str) -> bool:
        return PurePosixPath(path).suffix.lower() in IMAGE_SUFFIXES

    @cached_property
    def refs_by_file(self) -> dict[tuple[str, str], list[xref.PortsRef]]:
        out: dict[tuple[str, str], list[xref.PortsRef]] = {}
        for r in self.refs:
            out.setdefault((r.release, r.path), []).append(r)
        return out

    @cached_property
    def annotations_by_file(self) -> dict[tuple[str, str], list[Annotation]]:
        out: dict[tuple[str, str], list[Annotation]] = {}
        for a in self.annotations:
            out.setdefault((a.release, a.path), []).append(a)
        return out

    @cached_property
    def port_files(self) -> list[str]:
        """Every scanned port file (with or without references), repository-relative."""
        found = {r.port_file for r in self.refs} | {d.port_file for d in self.divergences}
        found |= {p.resolve().relative_to(self.root.resolve()).as_posix()
                  for p in xref.port_files(self.port_paths)}
        return sorted(found)
