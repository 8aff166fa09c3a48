"""Build-time integrity: the build fails, naming file and line, when a cross-reference or a
displayed file is wrong.

Checked on every build (not only when documents changed, since the port changes without them):

* every ``Ports:`` line of the port, by :func:`archive.xref.check` (the one rule);
* every ``{annotation}`` and ``{src}`` target, by the same rule: known release, known file,
  range inside the file, and the last component of the named symbol inside the range
  (:func:`archive.xref.symbol_names`) when the release is fetched;
* fixity: every fetched file's SHA-256 equals its manifest's, and no manifest file is missing.

Problems are raised together as one :class:`IntegrityError` (``path:line: message`` each), which
Sphinx reports as an error and exits with status 2.
"""
from __future__ import annotations

import hashlib
import re

from sphinx.errors import SphinxError
from sphinx.util import logging

from archive import xref
from archive.sphinxext.model import Site

logger = logging.getLogger(__name__)
_WHERE = re.compile(r"^(?P<where>.*?:\d+): (?P<msg>.*)$", re.S)


class IntegrityError(SphinxError):
    category = "Integrity error (broken cross-reference or altered original)"


def check_target(site: Site, release: str, path: str, first: int, last: int, symbol: str) -> str | None:
    """:func:`archive.xref.target_problem` for one annotation or link; a whole-file link
    (``first == last == 0``) needs only a known file."""
    if first == 0 and last == 0 and path in getattr(site.manifests.get(release), "files", {}):
        return None
    return xref.target_problem(site.manifests, release, path, first, last, symbol,
                               lambda: None if (t := site.text(release, path)) is None else t.splitlines())


def fixity(site: Site) -> list[str]:
    problems = []
    for release, man in site.manifests.items():
        if not site.present(release):
            continue
        for e in man.files.values():
            data = site.data(release, e.path)
            where = f"{site.original.name}/{release}/{e.path}"      # the folder the conf names
            if data is None:
                problems.append(f"{where}: missing (listed in the {release} manifest)")
            elif hashlib.sha256(data).hexdigest() != e.sha256:
                problems.append(f"{where}: SHA-256 differs from the manifest; the original was altered")
    return problems


def problems(site: Site, links: list[tuple[str, int, str, tuple | None]]) -> list[str]:
    found = list(xref.check(site.refs, site.manifests, site.original))
    for a in site.annotations:
        msg = check_target(site, a.release, a.path, a.first, a.last, a.symbol)
        if msg:
            found.append(f"{a.source}:{a.lineno}: annotation {a.target}: {msg}")
    for source, line, text, parsed in links:
        if parsed is None:
            found.append(f"{source}:{line}: cannot read target {text!r}; expected "
                         "<release>/<path>:<first>-<last> [Symbol]")
            continue
        msg = check_target(site, *parsed)
        if msg:
            found.append(f"{source}:{line}: {text}: {msg}")
    return found + fixity(site)


def enforce(site: Site, links: list[tuple[str, int, str, tuple | None]], fail: bool = True) -> None:
    """Log every problem at its place (``file:line: ERROR: ...``); then, if ``fail``, stop the
    build with all of them (``archive_fail_on_integrity = False`` only warns, for drafting)."""
    found = problems(site, links)
    for p in found:
        m = _WHERE.match(p)
        where, msg = (m["where"], m["msg"]) if m else (p.split(": ", 1) + [""])[:2]
        (logger.error if fail else logger.warning)(msg, location=where, type="archive", subtype="integrity")
    if found and fail:
        raise IntegrityError(f"{len(found)} problem(s):\n" + "\n".join(found))
