"""The site's two Pygments styles, light and dark, with every token colour readable (WCAG
contrast at least :data:`MIN_CONTRAST`) on every background a code line can have: the code
column, a highlighted (selected) line, a diff's inserted/deleted cell, a margin panel.

They are Pygments' ``default`` (light) and ``monokai`` (dark) with each colour that falls short
moved towards black (light) or white (dark) until it passes; hue is kept. The backgrounds are
read from ``static/archive.css`` (its ``--code``, ``--hl``, ``--ins``, ``--del``, ``--panel``,
``--bg`` and the line tints, for each scheme), so the two cannot drift apart.
Sphinx is pointed at them by the theme (``pygments_style = "archive.sphinxext.styles.Light"``).
"""
from __future__ import annotations

import re
from pathlib import Path

from pygments.style import Style
from pygments.styles import get_style_by_name

MIN_CONTRAST = 4.6  # WCAG AA for text is 4.5; a little margin for rounding in browsers
CSS = Path(__file__).resolve().parent / "static" / "archive.css"
BACKGROUND_VARS = ("--code", "--hl", "--ins", "--del", "--panel", "--bg")
TINTS = (("--p", 0.12), ("--dv", 0.12))  # the cited / diverging line tints over --code


def palettes(css: str | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """The light and dark ``--name: #colour`` variables of archive.css."""
    css = CSS.read_text(encoding="utf-8") if css is None else css
    light = css[css.index(":root"):]
    light = light[:light.index("}")]
    dark = css[css.index("prefers-color-scheme: dark"):]
    dark = dark[dark.index(":root"):]
    dark = dark[:dark.index("}")]
    var = re.compile(r"(--[a-z]+):\s*(#[0-9a-fA-F]{3,6})\b")
    return dict(var.findall(light)), dict(var.findall(dark))


def backgrounds(palette: dict[str, str]) -> tuple[str, ...]:
    """Every background a code token can stand on in one scheme."""
    out = [palette[v] for v in BACKGROUND_VARS]
    for var, t in TINTS:
        out.append(_blend(palette["--code"], palette[var], t))
    return tuple(out)


def _rgb(hexcol: str) -> tuple[float, float, float]:
    h = hexcol.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    return tuple(int(h[i:i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


def luminance(hexcol: str) -> float:
    def lin(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (lin(c) for c in _rgb(hexcol))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: str, bg: str) -> float:
    a, b = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def _mix(hexcol: str, toward: float, t: float) -> str:
    return "#" + "".join(f"{round((c + (toward - c) * t) * 255):02x}" for c in _rgb(hexcol))


def _blend(base: str, over: str, t: float) -> str:
    return "#" + "".join(f"{round((b + (o - b) * t) * 255):02x}" for b, o in zip(_rgb(base), _rgb(over)))


def readable(hexcol: str, backgrounds: tuple[str, ...], dark: bool) -> str:
    """``hexcol``, or the nearest colour of the same hue towards white (dark) / black (light)
    whose contrast with every background is at least :data:`MIN_CONTRAST`."""
    toward = 1.0 if dark else 0.0
    for step in range(0, 101):
        c = _mix(hexcol, toward, step / 100)
        if min(contrast(c, bg) for bg in backgrounds) >= MIN_CONTRAST:
            return c
    return "#ffffff" if dark else "#000000"


_COLOR = re.compile(r"(?<![\w:])#[0-9a-fA-F]{6}\b|(?<![\w:])#[0-9a-fA-F]{3}\b")


def _fixed(base: str, backgrounds: tuple[str, ...], dark: bool) -> dict:
    src = get_style_by_name(base)
    out = {}
    for ttype, spec in src.styles.items():
        parts = []
        for part in (spec or "").split():
            if part.startswith("bg:") or part.startswith("border:"):
                continue  # the page owns the backgrounds; borders (errors) are dropped
            if _COLOR.fullmatch(part):
                part = readable(part, backgrounds, dark)
            parts.append(part)
        out[ttype] = " ".join(parts)
    return out


_LIGHT, _DARK = palettes()
LIGHT_BACKGROUNDS, DARK_BACKGROUNDS = backgrounds(_LIGHT), backgrounds(_DARK)


class Light(Style):
    name = "archive-light"
    background_color = _LIGHT["--code"]
    highlight_color = _LIGHT["--hl"]
    styles = _fixed("default", LIGHT_BACKGROUNDS, dark=False)


class Dark(Style):
    name = "archive-dark"
    background_color = _DARK["--code"]
    highlight_color = _DARK["--hl"]
    styles = _fixed("monokai", DARK_BACKGROUNDS, dark=True)
