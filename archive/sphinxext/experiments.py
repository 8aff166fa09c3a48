"""Sphinx module for the experiments history pages (placeholder until the generator lands).

It registers nothing yet; the full version generates ``experiments/index.html`` and one page
per layers-NNN experiment from :mod:`archive.experiments`.
"""


def setup(app):
    return {"parallel_read_safe": True, "parallel_write_safe": True}
