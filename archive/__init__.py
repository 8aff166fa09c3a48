"""The code *about* the releases: pinned manifests, fetch and verify, the cross-reference index
(``Ports:`` lines) and the Sphinx extension. None of the upstream code lives here."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository root
ORIGINAL = ROOT / "original"                   # fetched releases, one folder each (git-ignored)
RELEASES_DIR = Path(__file__).resolve().parent / "releases"
