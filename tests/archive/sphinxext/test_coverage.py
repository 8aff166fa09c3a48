"""archive.sphinxext.coverage: the share of each file cited and annotated."""
from __future__ import annotations

import re

from tests.archive.sphinxext.siteroot import page


def test_coverage_numbers(built):
    html = page(built[0], "coverage.html")
    # kern.cu: 11 lines; 3-7 and 9-11 cited = 8; 3-7 annotated = 5; tail.py 1-2 is only linked
    row = re.search(r'src/kern.cu</a></td><td class="num">(\d+)</td><td class="num">(\d+)</td>.*?'
                    r'<td class="num">(\d+)</td>', html, re.S)
    assert row and row.groups() == ("11", "8", "5")
    assert 'data-cited="8"' in html and 'data-annotated="5"' in html
