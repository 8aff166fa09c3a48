"""archive.sphinxext.styles: every token colour and theme text colour readable (>= 4.5:1) on
every code background of both themes, and the site uses these styles."""
from __future__ import annotations

import pytest
from pygments.styles import get_style_by_name

from archive.sphinxext import styles
from tests.archive.sphinxext.siteroot import page


@pytest.mark.parametrize("style, base, dark", [(styles.Light, "default", False), (styles.Dark, "monokai", True)])
def test_every_token_colour_readable_on_every_background(style, base, dark):
    bgs = styles.DARK_BACKGROUNDS if dark else styles.LIGHT_BACKGROUNDS
    assert len(bgs) == 8 and len(set(bgs)) == 8
    checked = 0
    for ttype, spec in style.styles.items():
        for part in spec.split():
            if part.startswith("#"):
                checked += 1
                assert min(styles.contrast(part, bg) for bg in bgs) >= 4.5, (ttype, part)
    assert checked > 10
    # the hue is the base style's: only the lightness moved
    assert get_style_by_name(base).styles.keys() == style.styles.keys()


@pytest.mark.parametrize("var", ["--fg", "--muted", "--link", "--p", "--a", "--dv"])
def test_theme_text_colours_readable(var):
    light, dark = styles.palettes()
    assert min(styles.contrast(light[var], bg) for bg in styles.LIGHT_BACKGROUNDS) >= 4.5
    assert min(styles.contrast(dark[var], bg) for bg in styles.DARK_BACKGROUNDS) >= 4.5


def test_the_site_uses_the_readable_styles(built):
    css = page(built[0], "_static/pygments_dark.css")
    monokai_operator = "#FF4689"
    assert monokai_operator.lower() not in css.lower()
    assert styles.Dark.styles[next(t for t in styles.Dark.styles if str(t) == "Token.Operator")].upper() in css.upper()
