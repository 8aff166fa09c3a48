"""The commentary of issue #12 keeps at least 80% of each finished file's lines beside a note.

Line counts come from the manifests, so the test runs without the releases fetched."""
from __future__ import annotations

import pytest

from archive import manifest as m
from tests.archive.test_annotations import all_annotation_refs

THRESHOLD = 0.80
# The files whose commentary is complete (issue #12); add a file here when its notes are done.
FINISHED = ["convnet.py", "layer.py", "convdata.py", "convdata_jpeg.py", "convdata_cifar.py",
            "shownet.py", "layers/layers-145.cfg", "layers/layer-params-145.cfg",
            "src/layer.cu", "src/layer_kernels.cu", "include/layer.cuh", "include/neuron.cuh",
            "src/neuron.cu", "src/weights.cu", "src/lr.cu", "src/convnet.cu", "src/worker.cu",
            "src/pyconvnet.cu", "src/data.cu", "src/cost.cu"]
# The same for the other releases, as (release, path): the r561 kernels the release calls.
FINISHED_ELSEWHERE = [("cuda-convnet-r561", "src/cudaconv2/filter_acts.cu"),
                      ("cuda-convnet-r561", "src/cudaconv2/weight_acts.cu"),
                      ("cuda-convnet-r561", "src/cudaconv2/img_acts.cu"),
                      ("cuda-convnet-r561", "src/cudaconv2/conv_util.cu")]


def covered_lines(release: str, path: str) -> set[int]:
    lines: set[int] = set()
    for r in all_annotation_refs():
        if r.release == release and r.path == path:
            lines.update(range(r.first, r.last + 1))
    return lines


@pytest.mark.parametrize("release, path", [("alexnet-2012", p) for p in FINISHED] + FINISHED_ELSEWHERE)
def test_finished_files_are_mostly_annotated(release, path):
    total = m.load_all()[release].files[path].lines
    share = len(covered_lines(release, path)) / total
    assert share >= THRESHOLD, f"{release}/{path}: {share:.1%} of {total} lines beside a note"


def test_coverage_counts_only_the_named_file():
    """The count can fail: a file with no notes has no covered lines."""
    assert covered_lines("alexnet-2012", "README.md") == set()
    assert covered_lines("alexnet-2012", "layer.py") <= set(range(1, 1419))


if __name__ == "__main__":  # the table of the report: notes and share per file
    for path in FINISHED:
        refs = [r for r in all_annotation_refs() if r.release == "alexnet-2012" and r.path == path]
        total = m.load_all()["alexnet-2012"].files[path].lines
        n = len(covered_lines("alexnet-2012", path))
        print(f"{path:28s} {len(refs):3d} notes {n:5d}/{total:5d} lines {100 * n / total:5.1f}%")
