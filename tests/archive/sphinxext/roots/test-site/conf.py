"""A made-up project for the site extension's tests: two fake releases (releases/, their
manifests generated from the bytes like the real ones: tests/archive/sphinxext/siteroot.py
regenerate_manifests), a fake port module with Ports:/DIVERGES: lines, MyST pages with an
annotation and {src} links. No upstream code: every file here is made up."""
extensions = ["myst_parser", "archive.sphinxext"]
project = "Synthetic"
html_theme = "archive"
exclude_patterns = ["_build", "releases", "port", "manifests"]
archive_manifests_dir = "manifests"
archive_original_dir = "releases"
archive_root = "."
archive_port_paths = ["port"]
archive_release_order = ["rel-a", "rel-b"]
