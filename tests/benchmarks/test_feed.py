"""benchmarks.feed runs end to end on tiny settings and prints the JSON keys the issue names
(rates are not asserted: timings live in the benchmark)."""
from __future__ import annotations

import json

from benchmarks import feed


def test_feed_benchmark_prints_its_keys(capsys):
    rc = feed.main(["--workers", "1", "--batches", "1", "--batch-size", "16", "--steps", "1",
                    "--rounds", "1", "--convert", "4", "--decode-repeats", "1", "--json", "--no-save"])
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    for key in ("images_per_s", "images_per_s_per_worker", "peer_images_per_s",
                "peer_images_per_s_per_worker", "converter_images_per_s", "converter_images_per_cpu_s"):
        assert rep[key] > 0, key
    for key in ("images_per_cpu_s", "peer_images_per_cpu_s"):  # None below 0.1 CPU-second counted
        assert rep[key] is None or rep[key] > 0, key
    assert rep["batch_size"] == 16 and rep["images"] == 4
    assert {r["decoder"] for r in rep["decoders"]} >= {"pillow", "pillow-draft", "simplejpeg"}
    assert feed.main(["--workers", "0"]) == 2
