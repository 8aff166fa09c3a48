"""HTML escaped by default: the one way the site's modules build HTML from values.

:func:`html` fills a template written in the code with values, escaping every value that is
not already :class:`HTML`, so a file name, a reason or a diary title cannot inject markup
whatever its bytes::

    html('<a href="{}">{}</a>', url, path)      # url and path escaped
    html('<li>{}</li>', html('<code>{}</code>', name))   # an HTML piece is kept as it is

:class:`HTML` marks a string as markup: what :func:`html` returns, and what comes from a
trusted renderer (Pygments, Sphinx) when it is wrapped as ``HTML(text)``. Adding or joining
keeps the rule: ``HTML + str``, :func:`join` and :meth:`HTML.join` escape the plain strings, so
a constant such as ``"</ul>"`` must be written ``html("</ul>")`` to stay markup (forgetting it
shows ``&lt;/ul&gt;`` on the page: a visible mistake, never an injection). ``HTML`` has
``__html__``, so Jinja2 and MarkupSafe take it as markup too. :func:`esc` and :func:`esc_attr`
escape one value for text or for an attribute.

Escaping follows the place of the value: inside a tag (an attribute value; the site writes
them between double quotes) ``& < > " '`` are escaped, as :func:`html.escape` does; in text
``& < >`` only, so text keeps its quotes as written. tests/archive/sphinxext/test_markup.py holds
every module of the extension to this (no f-string builds markup, none imports ``html``).

Not a port: the project's own site machinery.
"""
from __future__ import annotations

import html as _stdlib_html
import string
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

_FORMATTER = string.Formatter()


class HTML(str):
    """A string of markup: never escaped again."""

    __slots__ = ()

    def __html__(self) -> str:
        return str(self)

    def __add__(self, other: Any) -> HTML:
        if not isinstance(other, str):
            return NotImplemented
        return HTML(str.__add__(self, _text(other)))

    def __radd__(self, other: Any) -> HTML:
        if not isinstance(other, str):
            return NotImplemented
        return HTML(str.__add__(_text(other), self))

    def join(self, parts: Iterable[Any]) -> HTML:  # type: ignore[override]
        """The parts, plain strings escaped as text, with this string between them."""
        return HTML(str.join(self, map(_text, parts)))


def _text(value: Any) -> str:
    """``value`` for a place in text, as a plain string (the hot path of every page)."""
    if isinstance(value, HTML):
        return value
    if type(value) is int:
        return str(value)
    if hasattr(value, "__html__"):
        return value.__html__()
    return _stdlib_html.escape(str(value), quote=False)


def _attr(value: Any) -> str:
    """``value`` for an attribute value, as a plain string."""
    if isinstance(value, HTML):
        return value
    if type(value) is int:
        return str(value)
    if hasattr(value, "__html__"):
        return value.__html__()
    return _stdlib_html.escape(str(value), quote=True)


def esc(value: Any) -> HTML:
    """``value`` as text in an element (``& < >`` escaped; markup kept)."""
    return HTML(_text(value))


def esc_attr(value: Any) -> HTML:
    """``value`` as an attribute value (``& < > " '`` escaped; markup kept)."""
    return HTML(_attr(value))


@lru_cache(maxsize=4096)
def _parsed(template: str) -> tuple[int, tuple[tuple[str, bool, str, str, bool], ...]]:
    """``template`` as its number of fields and its (literal, has a field, conversion, spec,
    field inside a tag) steps."""
    steps = []
    in_tag = False
    for literal, field, spec, conv in _FORMATTER.parse(template):
        for ch in literal:
            if ch == "<":
                in_tag = True
            elif ch == ">":
                in_tag = False
        if field not in (None, ""):
            raise ValueError(f"html(): fields are '{{}}' in order, not {field!r}: {template!r}")
        steps.append((literal, field is not None, conv or "", spec or "", in_tag))
    return sum(1 for s in steps if s[1]), tuple(steps)


def html(template: str, /, *args: Any) -> HTML:
    """``template`` (markup written in the code) with its ``{}`` fields filled by ``args``, each
    escaped for where it stands (:func:`esc_attr` inside a tag, :func:`esc` elsewhere) unless it is
    :class:`HTML`. Fields take conversions and format specs as :meth:`str.format` does
    (``{:.0%}``, ``{!r}``); they are numbered in order (no names, no indices)."""
    nfields, steps = _parsed(template)
    if nfields != len(args):
        raise IndexError(f"html(): {template!r} has {nfields} fields, {len(args)} values given")
    out: list[str] = []
    i = 0
    for literal, has_field, conv, spec, in_tag in steps:
        out.append(literal)
        if has_field:
            value = args[i]
            i += 1
            if conv:
                value = _FORMATTER.convert_field(value, conv)
            if spec:
                value = format(value, spec)
            out.append(_attr(value) if in_tag else _text(value))
    return HTML("".join(out))


def join(parts: Iterable[Any], sep: str = "") -> HTML:
    """The parts joined by ``sep`` (markup written in the code), plain strings escaped as text."""
    return HTML(sep).join(parts)


__all__ = ["HTML", "esc", "esc_attr", "html", "join"]
