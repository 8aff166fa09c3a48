"""``python -m benchmarks.feed``: the ImageNet training feed's rate, against a PyTorch DataLoader
doing the same work, in the same run, interleaved; the converter's rate; the JPEG decoders.

The feed: ``inet-lr-cropped-jpeg`` on its training path (decode, random 224 crop shared by each
chunk of 32, mirror, mean, PCA colour noise; ``--workers`` processes, ``--batches`` batches in
flight), timed over whole batches through ``get_next_batch`` as the trainer calls it. The peer: a
``torch.utils.data.DataLoader`` with as many workers and about ``--batches`` batches in flight,
whose dataset decodes each JPEG string with Pillow and crops, mirrors, subtracts the mean and adds
the colour noise per image (the usual torchvision-style loader), collated into float32 batches. The
two take turns (``--rounds`` rounds of [feed, peer]; each turn first takes, untimed, the batches
that were prefetched during the other's turn), so the load of a shared machine falls on both alike;
each number is the median of the rounds, in images per second, in all and per worker (keys
``images_per_s``, ``images_per_s_per_worker``, ``peer_images_per_s``,
``peer_images_per_s_per_worker``), and per CPU-second of the main process and its workers together
(``images_per_cpu_s``, ``peer_images_per_cpu_s``: the per-core rate, which a machine shared with
other work distorts less than the wall clock). Without ``--data-path`` a folder of synthetic
256×256 batches is made from matplotlib's sample photograph (random crops, scales and mirrors of
it, JPEG quality 90, as the converter writes them).

``--convert N`` (default 96 in ``make bench``: 0 skips) also times ``python -m port.data imagenet``
on N full-size JPEGs (500×375, as an average ImageNet image) with ``--workers`` processes:
``converter_images_per_s`` (and per worker), and ``converter_images_per_cpu_s`` from a second,
in-process conversion of the same files (one core). The decoder table (``decoders``) is decodes per
second on one core for Pillow, Pillow with draft mode, simplejpeg and PyTurboJPEG (where
installed) at 256² and 500×375.

Timings are not asserted anywhere; a shared machine's load changes every number (the JSON
records the load average before and after).
"""
from __future__ import annotations

import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.timing import save_report
from port.errors import ArgumentParser, UserError, main_guard
from port.util import pickle, unpickle


def _photo() -> Image.Image:
    from matplotlib import cbook  # noqa: PLC0415

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return Image.open(f).convert("RGB")


def _variants(rng, n: int, size: tuple[int, int]) -> list[Image.Image]:
    """n different images of ``size`` cut from the sample photograph (crops, scales, mirrors)."""
    src = _photo()
    out = []
    for _ in range(n):
        w, h = src.size
        cw, ch = int(rng.integers(w // 3, w)), int(rng.integers(h // 3, h))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        im = src.crop((x, y, x + cw, y + ch)).resize(size, Image.BICUBIC)
        if rng.integers(2):
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        out.append(im)
    return out


def _jpeg(im: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def make_data(folder: Path, batches: int, batch_size: int, seed: int = 0) -> Path:
    """Synthetic converter output: ``batches`` batches of 256×256 JPEGs and a batches.meta."""
    rng = np.random.default_rng(seed)
    pool = [_jpeg(im) for im in _variants(rng, min(64, batches * batch_size), (256, 256))]
    for b in range(1, batches + 1):
        idx = rng.integers(0, len(pool), batch_size)
        pickle(folder / f"data_batch_{b}", ([pool[i] for i in idx], [(256, 256)] * batch_size,
                                            [(f"n{i:08d}", int(i) % 1000) for i in idx]))
    x = np.stack([np.asarray(Image.open(io.BytesIO(s))) for s in pool]).astype(np.float64)
    cov = np.cov(x.reshape(-1, 3).T)
    evals, evecs = np.linalg.eigh(cov)
    pickle(folder / "batches.meta", {
        "data_mean": x.mean(0).transpose(2, 0, 1).reshape(-1, 1).astype(np.float32),
        "color_pca": (np.sqrt(evals).astype(np.float32), evecs.astype(np.float32)),
        "label_names": [str(i) for i in range(1000)], "num_vis": 3 * 256 * 256,
        "batch_size": batch_size, "dp_type": "inet-lr-cropped-jpeg"})
    return folder


def _cpu_seconds(pids) -> float:
    """User + system CPU seconds of this process and of ``pids`` (from /proc; 0 for those gone)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = sum(os.times()[:2])
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def _border(data: Path) -> int:
    """The crop border: 16 at 256 px (224 crops), S/16 for other sizes."""
    return int(round((unpickle(data / "batches.meta")["num_vis"] / 3) ** 0.5)) // 16


def _per_cpu_s(n: int, cpu_s: float) -> float | None:
    """Images per CPU-second, or None when too little CPU time was counted (/proc counts 10 ms
    ticks)."""
    return n / cpu_s if cpu_s >= 0.1 else None


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _rate(v) -> str:
    return "     —" if v is None else f"{v:6.0f}"


# ---- the port's feed ----------------------------------------------------------------------------

class PortFeed:
    def __init__(self, data: Path, workers: int, k: int, noise: float):
        from port.data import get_instance  # noqa: PLC0415

        self.dp = get_instance(data, None, type="inet-lr-cropped-jpeg",
                               dp_params={"crop_border": _border(data), "color_noise": noise, "seed": 1,
                                          "feed_workers": workers, "feed_batches": k})

    def pids(self):
        feed = self.dp._feed
        return list(feed.pool._processes or {}) if feed is not None else []

    def run(self, nbatches: int) -> int:
        n = 0
        for _ in range(nbatches):
            crops = self.dp.get_next_batch()[2][0]
            n += crops.shape[1]
        return n

    def close(self):
        self.dp.close()


# ---- the PyTorch peer ---------------------------------------------------------------------------

class _TorchSet:
    """Per image: Pillow decode, random 224 crop, mirror, mean, PCA colour noise (float32 CHW)."""

    def __init__(self, strings, labels, mean_crop, stdevs, vecs, noise, border=16):
        self.strings, self.labels = strings, labels
        self.mean, self.stdevs, self.vecs, self.noise, self.b = mean_crop, stdevs, vecs, noise, border

    def __len__(self):
        return len(self.strings)

    def __getitem__(self, i):
        import torch  # noqa: PLC0415

        rng = np.random.default_rng()
        x = np.asarray(Image.open(io.BytesIO(self.strings[i])).convert("RGB"))   # (S, S, 3)
        b, inner = self.b, x.shape[0] - 2 * self.b
        oy, ox = rng.integers(0, 2 * b + 1, 2)
        c = x[oy:oy + inner, ox:ox + inner]
        if rng.integers(2) == 0:
            c = c[:, ::-1]
        t = c.transpose(2, 0, 1).astype(np.float32) - self.mean                # (3, inner, inner)
        if self.noise > 0:
            z = rng.standard_normal(3).astype(np.float32)
            t += (self.noise * (self.vecs @ (z * self.stdevs)))[:, None, None]
            t /= np.float32(1 + self.noise)
        return torch.from_numpy(t), self.labels[i]


class TorchPeer:
    def __init__(self, data: Path, workers: int, k: int, noise: float, batch_size: int):
        import torch  # noqa: PLC0415

        torch.set_num_threads(1)
        strings, labels = [], []
        for p in sorted(data.glob("data_batch_*"))[:8]:  # its images in memory: a few batches
            s, _, lab = unpickle(p)
            strings += s
            labels += [c for _, c in lab]
        meta = unpickle(data / "batches.meta")
        size, b = int(round((meta["num_vis"] / 3) ** 0.5)), _border(data)
        mean = meta["data_mean"].reshape(3, size, size)[:, b:size - b, b:size - b].copy()
        ds = _TorchSet(strings, labels, mean, meta["color_pca"][0], meta["color_pca"][1], noise, b)
        per_worker = -(-k // max(1, workers))        # about k batches in flight, as the feed
        self.in_flight = per_worker * max(1, workers)
        self.loader = torch.utils.data.DataLoader(
            ds, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True,
            persistent_workers=workers > 0, prefetch_factor=per_worker if workers > 0 else None)
        self.it = iter(self.loader)

    def pids(self):
        return [w.pid for w in getattr(self.it, "_workers", [])]

    def run(self, nbatches: int) -> int:
        n = 0
        for _ in range(nbatches):
            try:
                x, _ = next(self.it)
            except StopIteration:
                self.it = iter(self.loader)
                x, _ = next(self.it)
            n += x.shape[0]
        return n

    def close(self):
        del self.it, self.loader


# ---- the converter and the decoders ---------------------------------------------------------------

def time_converter(n: int, workers: int, tmp: Path) -> dict:
    from port.data.imagenet import convert_imagenet  # noqa: PLC0415

    rng = np.random.default_rng(2)
    tree = tmp / "tree"
    for c in range(4):
        (tree / f"n{c:08d}").mkdir(parents=True)
    for i, im in enumerate(_variants(rng, n, (500, 375))):
        (tree / f"n{i % 4:08d}" / f"img{i}.JPEG").write_bytes(_jpeg(im, 92))
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = convert_imagenet(tree, tmp / "converted", batch_size=max(1, n // (4 * max(1, workers))),
                             workers=workers)
    dt = time.perf_counter() - t0
    c0 = time.process_time()                               # one core, in this process
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        convert_imagenet(tree, tmp / "converted-1", batch_size=n, workers=0)
    return {"images": s["train_cases"], "seconds": dt, "converter_images_per_s": n / dt,
            "converter_images_per_s_per_worker": n / dt / max(1, workers),
            "converter_images_per_cpu_s": n / (time.process_time() - c0)}


def time_decoders(repeats: int = 3, images: int = 16) -> list[dict]:
    rng = np.random.default_rng(3)
    rows = []
    decoders = {"pillow": lambda b: np.asarray(Image.open(io.BytesIO(b)).convert("RGB"))}

    def draft(b):
        with Image.open(io.BytesIO(b)) as im:
            im.draft("RGB", (im.size[0] // 2 + 1, 256))
            return np.asarray(im.convert("RGB"))
    decoders["pillow-draft"] = draft
    try:
        import simplejpeg  # noqa: PLC0415

        decoders["simplejpeg"] = lambda b: simplejpeg.decode_jpeg(b, colorspace="RGB")
    except ImportError:
        pass
    try:
        import turbojpeg  # noqa: PLC0415

        tj = turbojpeg.TurboJPEG()
        decoders["pyturbojpeg"] = lambda b: tj.decode(b, pixel_format=turbojpeg.TJPF_RGB)
    except Exception:  # noqa: BLE001 (not installed, or no libturbojpeg)
        pass
    for size in ((256, 256), (500, 375)):
        data = [_jpeg(im) for im in _variants(rng, images, size)]
        for name, fn in decoders.items():
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                for _ in range(4):
                    for b in data:
                        fn(b)
                best = min(best, (time.perf_counter() - t0) / (4 * len(data)))
            rows.append({"decoder": name, "size": f"{size[0]}x{size[1]}", "decodes_per_s": 1 / best})
    return rows


# ---- main ---------------------------------------------------------------------------------------

def parse_args(argv):
    ap = ArgumentParser(prog="python -m benchmarks.feed", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-path", type=Path, default=None,
                    help="converted ImageNet batches (default: synthetic ones in a temp folder)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: cores)")
    ap.add_argument("--batches", type=int, default=3, help="batches in flight, K (default 3)")
    ap.add_argument("--batch-size", type=int, default=256, help="images per synthetic batch (default 256)")
    ap.add_argument("--steps", type=int, default=6, help="batches timed per round (default 6)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of [feed, peer] (default 3)")
    ap.add_argument("--color-noise", type=float, default=0.1, help="PCA noise coefficient (default 0.1)")
    ap.add_argument("--convert", type=int, default=96,
                    help="full-size JPEGs to convert for the converter's rate (0: skip)")
    ap.add_argument("--decode-repeats", type=int, default=3,
                    help="timed passes per decoder, best kept (default 3; 0 skips the table)")
    ap.add_argument("--no-peer", action="store_true", help="skip the PyTorch DataLoader")
    ap.add_argument("--json", action="store_true", help="print the record as JSON (else a table)")
    ap.add_argument("--no-save", action="store_true", help="do not write benchmarks/results/*.json")
    return ap.parse_args(argv)


@main_guard("benchmarks.feed")
def main(argv=None) -> int:
    a = parse_args(argv)
    if a.workers < 1 or a.batches < 1 or a.steps < 1 or a.rounds < 1 or a.batch_size < 1:
        raise UserError("--workers, --batches, --batch-size, --steps and --rounds must be ≥ 1")
    rep = {"time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "machine": platform.machine(), "cpu_count": os.cpu_count(),
           "python": platform.python_version(), "workers": a.workers, "batches_in_flight": a.batches,
           "steps_per_round": a.steps, "rounds": a.rounds, "loadavg_start": list(os.getloadavg())}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = a.data_path
        if data is None:
            data = make_data(tmp / "data", max(4, a.batches + 1), a.batch_size)
        elif not (data / "batches.meta").is_file():
            raise UserError(f"{data}: no batches.meta (expected a folder written by port.data imagenet)")
        bs = len(unpickle(next(iter(sorted(data.glob("data_batch_*")))))[0])
        rep["batch_size"] = bs
        feed = PortFeed(data, a.workers, a.batches, a.color_noise)
        peer = None if a.no_peer else TorchPeer(data, a.workers, a.batches, a.color_noise, bs)
        feed.run(a.batches + 1)                                  # warm-up: workers started, K in flight
        if peer:
            peer.run(a.batches + 1)
        rates, peer_rates, cpu, peer_cpu = [], [], [], []
        for _ in range(a.rounds):
            feed.run(a.batches)             # untimed: what was prefetched during the other's turn
            t0, c0 = time.perf_counter(), _cpu_seconds(feed.pids())
            n = feed.run(a.steps)
            rates.append(n / (time.perf_counter() - t0))
            cpu.append(_per_cpu_s(n, _cpu_seconds(feed.pids()) - c0))
            if peer:
                peer.run(peer.in_flight)
                t0, c0 = time.perf_counter(), _cpu_seconds(peer.pids())
                n = peer.run(a.steps)
                peer_rates.append(n / (time.perf_counter() - t0))
                peer_cpu.append(_per_cpu_s(n, _cpu_seconds(peer.pids()) - c0))
        feed.close()
        if peer:
            peer.close()
        rep["images_per_s"] = statistics.median(rates)
        rep["images_per_s_per_worker"] = rep["images_per_s"] / a.workers
        rep["rounds_images_per_s"] = rates
        rep["images_per_cpu_s"] = _median(cpu)               # all processes' CPU time: per core
        if peer:
            rep["peer_images_per_cpu_s"] = _median(peer_cpu)
            rep["peer_images_per_s"] = statistics.median(peer_rates)
            rep["peer_images_per_s_per_worker"] = rep["peer_images_per_s"] / a.workers
            rep["rounds_peer_images_per_s"] = peer_rates
        if a.convert > 0:
            rep.update(time_converter(a.convert, a.workers, tmp))
    rep["decoders"] = time_decoders(a.decode_repeats) if a.decode_repeats > 0 else []
    rep["loadavg_end"] = list(os.getloadavg())
    if a.json:
        print(json.dumps(rep, indent=1))
    else:
        print(f"{os.cpu_count()} CPUs, {a.workers} workers, {a.batches} batches in flight, batch size "
              f"{rep['batch_size']}, load average {rep['loadavg_start'][0]:.1f}")
        print(f"feed (port)        {rep['images_per_s']:8.0f} images/s  "
              f"{rep['images_per_s_per_worker']:6.0f} per worker  "
              f"{_rate(rep['images_per_cpu_s'])} per CPU-second")
        if "peer_images_per_s" in rep:
            print(f"DataLoader (torch) {rep['peer_images_per_s']:8.0f} images/s  "
                  f"{rep['peer_images_per_s_per_worker']:6.0f} per worker  "
                  f"{_rate(rep['peer_images_per_cpu_s'])} per CPU-second")
        if "converter_images_per_s" in rep:
            print(f"converter          {rep['converter_images_per_s']:8.0f} images/s  "
                  f"{rep['converter_images_per_s_per_worker']:6.0f} per worker  "
                  f"{rep['converter_images_per_cpu_s']:6.0f} per CPU-second (500×375 JPEGs)")
        for r in rep["decoders"]:
            print(f"decode {r['size']:8} {r['decoder']:13} {r['decodes_per_s']:7.0f} /s (one core)")
    if not a.no_save:
        print(f"wrote {save_report(rep, 'feed')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
