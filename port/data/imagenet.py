"""``python -m port.data imagenet``: ImageNet as people have it -> ``inet-lr-cropped-jpeg`` batches.

What this is: a converter that reads the official ILSVRC2012 distribution as downloaded, without
unpacking it (``ILSVRC2012_img_train.tar``: a tar of 1,000 ``<wnid>.tar``, each holding
``<wnid>_<n>.JPEG``; ``ILSVRC2012_img_val.tar``: 50,000 flat ``ILSVRC2012_val_<8 digits>.JPEG``;
``ILSVRC2012_devkit_t12.tar.gz`` with ``data/meta.mat`` and
``data/ILSVRC2012_validation_ground_truth.txt``), the Kaggle copy (class-folder tree for training,
a flat val folder, ``LOC_val_solution.csv`` + ``LOC_synset_mapping.txt``), and any folder tree of
class folders. What this is not: a downloader.

Not a port: the release ships no data scripts; the output is the format the provider reads
(inventory §5).

Reading. An uncompressed tar is indexed by its headers only (the outer tar's 1,000 members, then
each inner tar's headers, read in place): every image becomes (file, byte offset, size), and the
workers read their images with ``pread`` straight from the tar. Nothing is unpacked to disk and
memory holds the index (about 250 bytes an image) and one image per worker. The reads of a batch
are scattered over the tar (training images are shuffled across batches): meant for an SSD.

Labels. Class k is the k-th of the training classes' WNIDs in sorted order (folder names for a
tree). In the 2012 devkit the 1,000 leaf synsets have ILSVRC2012_ID 1..1000 in that same sorted
order, so label k = ILSVRC2012_ID − 1: the release's ``verify-test-preds.py`` reads a prediction
file's 1-based ids, subtracts 1 and indexes ``label_names`` with the result, and ``shownet.py``
shows ``label_names[k].split(',')[0]``, i.e. the release's names were the synsets' words. Here
``label_names`` are the words when the devkit or the Kaggle synset mapping is given (else the class
names) and ``label_wnids`` the WNIDs; each case's label is ``(wnid, k)``, as the release's batches
were (``fix-big-imgnet.py`` reads ``l[0]`` as the WNID and ``l[1]`` as the class).

Images, as the paper (§2): the shorter side scaled to S (256) with bicubic filtering and the central
S×S square kept, then JPEG-encoded (quality 90). Grayscale, CMYK and palette images become RGB; files
Pillow cannot read (truncated, not images), images over Pillow's decompression-bomb limit
(``Image.MAX_IMAGE_PIXELS`` source pixels) and files over ``MAX_FILE_BYTES`` are skipped, counted and
listed in ``skipped.txt`` beside the batches. Memory per image is bounded before decoding: a JPEG is
decoded at the smallest DCT scale (1/2, 1/4, 1/8: Pillow's draft mode) that still covers the resize
target, and only the pixels of the crop are resampled (``resize(box=...)``), so neither a 12000²
JPEG nor a 1×60000 PNG needs more than a few megabytes; a decode of more than ``MAX_DECODE_PIXELS``
is refused.
DIVERGES: decoding at a reduced DCT scale (draft mode) before the bicubic resize differs from
resizing the full decode by a few grey levels on images more than twice the target size; it is
what keeps memory bounded and the converter fast.

Mean and colour PCA come from the decoded output JPEGs (exactly what the provider sees), in integer
sums (exact, so the result does not depend on the order the workers finish in, nor on a resume).

Work and resume. The images are planned into batches up front (training shuffled with ``seed`` so
every batch mixes classes; test / validation in name order); each batch is one task for a process
pool, written atomically by its worker. ``.imagenet-convert/`` in ``--out`` holds the plan's
fingerprint and the running sums of the finished batches; a rerun after a kill checks the finished
batches (size and plan) and does only the rest. ``batches.meta`` is written last: a folder without
it is an unfinished conversion.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sys
import tarfile
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from port.data.jpeg import decode_rgb
from port.errors import UserError

Image.init()  # register every plugin, so formats=[...] below can name them
from port.util import atomic_write_bytes, format_bytes, not_a_file, pickle

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".gif", ".tif", ".tiff", ".webp"}
# The image formats Pillow may open here (never EPS and friends, which run external programs).
PIL_FORMATS = ["JPEG", "PNG", "BMP", "PPM", "GIF", "TIFF", "WEBP"]
MAX_FILE_BYTES = 64 << 20          # larger files are skipped (ImageNet's largest JPEG is ~15 MB)
MAX_DECODE_PIXELS = 40_000_000     # most pixels one decode may produce (120 MB RGB)
MAX_META_BYTES = 64 << 20          # devkit members, label files
STATE_DIR = ".imagenet-convert"
REPORT = "skipped.txt"

Item = tuple  # (file, offset or -1, size, display name, class index)


def _progress(iterable=None, **kw):
    """tqdm only when stderr is a terminal (images/s and the time left come with it)."""
    return tqdm(iterable, disable=not sys.stderr.isatty(), **kw)


def quote_name(name: str) -> str:
    """A file name as one printable line: names with control characters (a newline) as repr()."""
    return name if name.isprintable() and "\t" not in name else repr(name)


# ---- one image ---------------------------------------------------------------------------------

class Skip(Exception):
    """An image that is skipped (and listed in the report), with the reason."""


def read_item(item: Item) -> bytes:
    """The bytes of one planned image (a file, or a member of an uncompressed tar)."""
    path, offset, size = item[0], item[1], item[2]
    if size > MAX_FILE_BYTES:
        raise Skip(f"{size} bytes, over the {MAX_FILE_BYTES >> 20} MiB limit per image")
    try:
        if offset < 0:
            why = not_a_file(path)  # nothing is opened that could block (a FIFO)
            if why:
                raise Skip(why)
            with open(path, "rb") as f:
                data = f.read(MAX_FILE_BYTES + 1)
            if len(data) > MAX_FILE_BYTES:
                raise Skip(f"over the {MAX_FILE_BYTES >> 20} MiB limit per image")
            return data
        with open(path, "rb") as f:
            data = os.pread(f.fileno(), size, offset)
        if len(data) != size:
            raise Skip(f"the tar ends inside this member ({len(data)} of {size} bytes)")
        return data
    except OSError as e:
        raise Skip(f"cannot be read ({e.strerror or e})") from None


def resize_bytes(data: bytes, size: int, quality: int) -> tuple[bytes, tuple[int, int]]:
    """Image bytes -> (JPEG of the central size×size square after the shorter side -> size, (w, h)).

    Raises :class:`Skip` for anything that is not a readable image within the limits.
    """
    try:
        with Image.open(io.BytesIO(data), formats=PIL_FORMATS) as im:
            w, h = im.size
            if w < 1 or h < 1:
                raise Skip(f"image header says {w}×{h}")
            if w * h > Image.MAX_IMAGE_PIXELS:
                raise Skip(f"{w}×{h} = {w * h} pixels, over Pillow's decompression-bomb limit "
                           f"({Image.MAX_IMAGE_PIXELS})")
            s = size / min(w, h)
            nw, nh = max(size, round(w * s)), max(size, round(h * s))
            if im.format in ("JPEG", "MPO"):  # an MPO opens through the JPEG plugin
                im.draft("RGB", (nw, nh))  # DCT scaling: decode at ≥ the resize target
            dw, dh = im.size
            if dw * dh > MAX_DECODE_PIXELS:
                raise Skip(f"{w}×{h} would decode to {dw * dh} pixels, over the limit "
                           f"{MAX_DECODE_PIXELS}")
            im = im.convert("RGB")        # grayscale, CMYK, palette, alpha -> RGB
            left, top = (nw - size) // 2, (nh - size) // 2
            fx, fy = dw / nw, dh / nh     # resize only the crop: the same sampling as
            box = (left * fx, top * fy, (left + size) * fx, (top + size) * fy)  # resize-then-crop
            im = im.resize((size, size), Image.BICUBIC, box=box)
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=quality)
            return buf.getvalue(), (w, h)
    except Skip:
        raise
    except UnidentifiedImageError:
        raise Skip(f"not an image file of the formats {', '.join(PIL_FORMATS)}") from None
    except Exception as e:  # noqa: BLE001 (every decoder failure is a skipped file, never a traceback)
        msg = " ".join(str(e).split())[:160]
        raise Skip(f"not a readable image ({type(e).__name__}: {msg})") from None


def resize_jpeg(path: Path, size: int, quality: int) -> tuple[bytes, tuple[int, int]] | None:
    """One image file -> (JPEG bytes, (w, h)), or None when it is skipped."""
    try:
        return resize_bytes(read_item((str(path), -1, 0)), size, quality)
    except Skip:
        return None


# ---- one batch (a worker's task) ---------------------------------------------------------------

def convert_batch(task: tuple) -> dict:
    """Read, resize and encode one planned batch, write ``data_batch_<n>`` atomically, return its
    integer pixel sums (for the mean and the colour PCA) and the skipped files."""
    out, batchnum, items, classes, size, quality = task
    strings, sizes, labels, skipped = [], [], [], []
    sum_img = np.zeros((size, size, 3), dtype=np.int64)                        # (S, S, 3)
    outer = np.zeros((3, 3), dtype=np.float64)                                 # exact below 2^53
    for item in items:
        try:
            with warnings.catch_warnings():  # Pillow's own (EXIF, truncation) would break the bar
                warnings.simplefilter("ignore")
                jpeg, wh = resize_bytes(read_item(item), size, quality)
        except Skip as e:
            skipped.append((item[3], str(e)))
            continue
        x = decode_rgb(jpeg)                                                   # (S, S, 3) uint8
        sum_img += x
        flat = x.reshape(-1, 3).astype(np.float64)
        outer += flat.T @ flat
        strings.append(jpeg)
        sizes.append(wh)
        labels.append((classes[item[4]], item[4]))
    path = Path(out) / f"data_batch_{batchnum}"
    pickle(path, (strings, sizes, labels))
    return {"batch": batchnum, "cases": len(strings), "bytes": path.stat().st_size,
            "skipped": skipped, "sum_img": sum_img,
            "sum_rgb": sum_img.reshape(-1, 3).sum(axis=0), "sum_outer": outer.astype(np.int64)}


# ---- listing the sources -----------------------------------------------------------------------

def _tar_open(path: Path, what: str) -> tarfile.TarFile:
    why = not_a_file(path)
    if why:
        raise UserError(f"{path}: {what} {why}")
    try:
        tar = tarfile.open(path, "r:")  # uncompressed only: members are read in place
    except tarfile.ReadError:
        raise UserError(f"{path}: {what} is not an uncompressed tar (the official ILSVRC2012 "
                        f"image tars are; unpack a compressed copy or give a folder)") from None
    except (tarfile.TarError, OSError, EOFError) as e:
        raise UserError(f"{path}: {what} cannot be read ({e})") from None
    return tar


def _tar_members(tar: tarfile.TarFile, path: Path, where: str):
    try:
        yield from tar
    except (tarfile.TarError, OSError, EOFError) as e:
        raise UserError(f"{path}: {where}: corrupt tar ({' '.join(str(e).split())})") from None


def _ustar_members(f, start: int, end: int) -> list[tuple[str, int, int, bool]] | None:
    """(name, data offset, size, regular file?) of the members of the tar in ``f[start:end]``,
    read header by header (3.5 times tarfile's rate here, 78,000 headers/s: the official training
    tar has 1.28 million), skipping folders; None when anything is not plain ustar (long names, pax
    headers, base-256 sizes, a bad checksum): tarfile then reads that tar."""
    fd = f.fileno()
    out = []
    pos = start
    while pos + 512 <= end:
        h = os.pread(fd, 512, pos)
        if len(h) < 512:
            return None
        if not any(h):
            break                                  # the end-of-archive blocks
        kind = h[156:157]
        try:
            if int(h[148:156].split(b"\0")[0].strip() or b"0", 8) != sum(h) - sum(h[148:156]) + 256:
                return None
            if kind not in (b"0", b"\0", b"7", b"5") or h[124] & 0x80:
                return None                        # long names, pax, links, base-256 sizes
            size = int(h[124:136].split(b"\0")[0].strip() or b"0", 8)
        except ValueError:
            return None
        name = h[:100].split(b"\0", 1)[0]
        if h[257:262] == b"ustar" and h[345:500].strip(b"\0"):
            name = h[345:500].split(b"\0", 1)[0] + b"/" + name
        if kind != b"5":
            out.append((name.decode("utf-8", "surrogateescape"), pos + 512, size, True))
        pos += 512 + (size + 511) // 512 * 512
    return out


def list_train_tar(path: Path) -> tuple[dict[str, list[Item]], list[tuple[str, str]]]:
    """``{wnid: [(tar, offset, size, name, -1)]}`` of ILSVRC2012_img_train.tar, and odd members."""
    per_class: dict[str, list] = {}
    odd = []
    with _tar_open(path, "training tar") as outer:
        for m in _progress(_tar_members(outer, path, "outer"), unit="class", desc="index"):
            if not m.isfile() or not m.name.endswith(".tar"):
                odd.append((m.name, "not a <wnid>.tar member of the training tar"))
                continue
            wnid = Path(m.name).name[:-4]
            files = per_class.setdefault(wnid, [])
            fast = _ustar_members(outer.fileobj, m.offset_data, m.offset_data + m.size)
            if fast is not None:  # plain ustar headers (the official tars): read directly
                for name, offset, size, regular in fast:
                    if regular:
                        files.append((str(path), offset, size, f"{m.name}/{name}", -1))
                    else:
                        odd.append((f"{m.name}/{name}", "not a regular file"))
                continue
            try:
                inner = tarfile.open(fileobj=outer.extractfile(m), mode="r:")
            except (tarfile.TarError, OSError, EOFError) as e:
                odd.append((m.name, f"not a readable tar ({e})"))
                continue
            with inner:
                for im in _tar_members(inner, path, m.name):
                    name = f"{m.name}/{im.name}"
                    if im.isfile():
                        files.append((str(path), m.offset_data + im.offset_data, im.size, name, -1))
                    elif not im.isdir():
                        odd.append((name, "not a regular file"))
    return per_class, odd


def list_flat_tar(path: Path) -> tuple[list[Item], list[tuple[str, str]]]:
    """The files of ILSVRC2012_img_val.tar (flat), sorted by name."""
    items, odd = [], []
    with _tar_open(path, "validation tar") as tar:
        for m in _tar_members(tar, path, "members"):
            if m.isfile():
                items.append((str(path), m.offset_data, m.size, m.name, -1))
            elif not m.isdir():
                odd.append((m.name, "not a regular file"))
    return sorted(items, key=lambda it: it[3]), odd


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
        return True
    except (ValueError, OSError, RuntimeError):
        return False


def _walk_files(folder: Path, root: Path, follow_links: bool, odd: list) -> list[Item]:
    """Image files under ``folder`` (recursively), sorted by path; symbolic links that leave
    ``root`` are listed in ``odd`` unless ``follow_links``."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=follow_links):
        here = Path(dirpath)
        for d in list(dirnames):
            p = here / d
            if p.is_symlink() and not follow_links:
                dirnames.remove(d)
                odd.append((str(p), "symbolic link to a folder: not followed (--follow-links)"))
        for f in filenames:
            p = here / f
            if p.suffix.lower() not in IMAGE_SUFFIXES:
                odd.append((str(p), "not an image file name (suffix)"))
            elif p.is_symlink() and not follow_links and not _inside(p, root):
                odd.append((str(p), f"symbolic link out of the tree (to {os.path.realpath(p)}); "
                                    f"--follow-links packs it"))
            else:
                found.append((str(p), -1, 0, str(p), -1))
    return sorted(found, key=lambda it: it[0])


def list_tree(tree: Path, follow_links: bool = False) -> tuple[dict[str, list[Item]], list]:
    """``{class folder: [items]}`` of a folder of class folders, and the files left out."""
    if not tree.is_dir():
        raise UserError(f"{tree}: image folder tree does not exist")
    root = tree.resolve()
    per_class, odd = {}, []
    for p in sorted(tree.iterdir()):
        if not p.is_dir():
            odd.append((str(p), "not a class folder"))
        elif p.is_symlink() and not follow_links and not _inside(p, root):
            odd.append((str(p), f"class folder is a symbolic link out of the tree (to "
                                f"{os.path.realpath(p)}); --follow-links packs it"))
        else:
            per_class[p.name] = _walk_files(p, root, follow_links, odd)
    return per_class, odd


def list_flat_folder(folder: Path, follow_links: bool = False) -> tuple[list[Item], list]:
    odd: list = []
    items = [it for it in _walk_files(folder, folder.resolve(), follow_links, odd)]
    return sorted(items, key=lambda it: Path(it[3]).name), odd


# ---- labels of the validation images ----------------------------------------------------------

def _read_small(path: Path, what: str) -> bytes:
    why = not_a_file(path)
    if why:
        raise UserError(f"{path}: {what} {why}")
    if path.stat().st_size > MAX_META_BYTES:
        raise UserError(f"{path}: {what} is {format_bytes(path.stat().st_size)}; expected under "
                        f"{MAX_META_BYTES >> 20} MiB")
    return path.read_bytes()


def read_devkit(path: Path) -> tuple[dict[str, str], list[str]]:
    """ILSVRC2012_devkit_t12.tar.gz -> ({wnid: words} of the 1,000 leaf synsets, validation WNIDs in
    file order)."""
    from scipy.io import loadmat  # noqa: PLC0415 (only the devkit needs scipy)

    why = not_a_file(path)
    if why:
        raise UserError(f"{path}: devkit {why}")
    found = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for m in tar:
                for key in ("data/meta.mat", "data/ILSVRC2012_validation_ground_truth.txt"):
                    if m.name.endswith(key) and m.isfile():
                        if m.size > MAX_META_BYTES:
                            raise UserError(f"{path}: {m.name} is {m.size} bytes; expected under "
                                            f"{MAX_META_BYTES >> 20} MiB")
                        found[key] = tar.extractfile(m).read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise UserError(f"{path}: devkit is not a readable tar.gz ({' '.join(str(e).split())})") from None
    for key in ("data/meta.mat", "data/ILSVRC2012_validation_ground_truth.txt"):
        if key not in found:
            raise UserError(f"{path}: devkit has no {key}")
    where = f"{path}:data/meta.mat"
    try:
        syn = loadmat(io.BytesIO(found["data/meta.mat"]), squeeze_me=True)["synsets"]
        rows = [(int(s["ILSVRC2012_ID"]), str(s["WNID"]), str(s["words"]), int(s["num_children"]))
                for s in np.atleast_1d(syn)]
    except Exception as e:  # noqa: BLE001 (a malformed .mat: one line)
        raise UserError(f"{where}: expected the 'synsets' struct (ILSVRC2012_ID, WNID, words, "
                        f"num_children) ({type(e).__name__}: {e})") from None
    leaves = sorted((i, w, words) for i, w, words, nc in rows if nc == 0)
    by_id = {i: w for i, w, _ in leaves}
    if [i for i, _, _ in leaves] != list(range(1, len(leaves) + 1)):
        raise UserError(f"{where}: the leaf synsets' ILSVRC2012_IDs are not 1..{len(leaves)}")
    val = []
    text = found["data/ILSVRC2012_validation_ground_truth.txt"].decode("ascii", "replace")
    for n, line in enumerate(text.splitlines(), start=1):
        try:
            val.append(by_id[int(line)])
        except (ValueError, KeyError):
            raise UserError(f"{path}:data/ILSVRC2012_validation_ground_truth.txt line {n}: "
                            f"expected an ILSVRC2012_ID in 1..{len(by_id)}, found "
                            f"{line.strip()[:40]!r}") from None
    return {w: words for _, w, words in leaves}, val


def _is_wnid(s: str) -> bool:
    return len(s) == 9 and s[0] == "n" and s[1:].isdigit()


def read_synset_mapping(path: Path) -> dict[str, str]:
    """LOC_synset_mapping.txt (``<wnid> <words>`` per line) -> {wnid: words}."""
    words = {}
    for n, line in enumerate(_read_small(path, "synset mapping").decode("utf-8", "replace")
                             .splitlines(), start=1):
        if not line.strip():
            continue
        wnid, _, text = line.strip().partition(" ")
        if not _is_wnid(wnid):
            raise UserError(f"{path}: line {n}: expected '<wnid> <words>', found {line[:40]!r}")
        words[wnid] = text
    return words


def read_val_solution(path: Path) -> dict[str, str]:
    """LOC_val_solution.csv (ImageId, PredictionString starting with the WNID) -> {ImageId: wnid}."""
    text = _read_small(path, "validation labels").decode("utf-8", "replace")
    out = {}
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if n == 1 and row[:1] == ["ImageId"]:
            continue
        wnid = row[1].split()[0] if len(row) == 2 and row[1].split() else ""
        if not _is_wnid(wnid):
            raise UserError(f"{path}: line {n}: expected 'ImageId,<wnid> x y x y ...', found "
                            f"{quote_name(','.join(row))[:60]}")
        out[row[0]] = wnid
    return out


# ---- the plan ----------------------------------------------------------------------------------

def _fingerprint(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:32]


def plan_batches(train: list[Item], test: list[Item], batch_size: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    train = [train[i] for i in rng.permutation(len(train))]
    batches = []
    for part in (train, test):
        batches.append([part[i:i + batch_size] for i in range(0, len(part), batch_size)])
    return batches  # [training batches, test batches]


def _load_state(state_dir: Path, fp: str):
    path = state_dir / "totals.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            done = json.loads(str(z["done"]))
            if str(z["plan"]) != fp:
                return None
            return {"sum_img": z["sum_img"].copy(), "sum_rgb": z["sum_rgb"].copy(),
                    "sum_outer": z["sum_outer"].copy(), "done": {int(k): v for k, v in done.items()}}
    except Exception:  # noqa: BLE001 (an unreadable state is redone from scratch)
        return None


def _save_state(state_dir: Path, fp: str, st: dict) -> None:
    def write(f):
        np.savez(f, plan=np.str_(fp), done=np.str_(json.dumps(st["done"])), sum_img=st["sum_img"],
                 sum_rgb=st["sum_rgb"], sum_outer=st["sum_outer"])
    atomic_write_bytes(state_dir / "totals.npz", write)


def convert_imagenet(source: Path, out: Path, batch_size: int = 1024, size: int = 256,
                     test_source: Path | None = None, test_fraction: float = 0.0,
                     quality: int = 90, seed: int = 0, val: Path | None = None,
                     devkit: Path | None = None, val_labels: Path | None = None,
                     synsets: Path | None = None, workers: int | None = None,
                     follow_links: bool = False) -> dict:
    """Write the JPEG batches of ``source`` (the official training tar or a class-folder tree) into
    ``out``; returns a summary (ranges, counts, skipped files, the report's path).

    Test batches come from ``val`` (the official validation tar or a flat folder, labelled by the
    ``devkit`` or by ``val_labels`` + ``synsets``), ``test_source`` (a tree with the same class
    folders), or the last ⌈f·n⌉ files of each class (``test_fraction`` f). Training batches are
    numbered from 1, test batches follow. ``workers``: processes (default: every core; 0: in this
    process).
    """
    if batch_size < 1:
        raise UserError(f"--batch-size={batch_size}: must be at least 1")
    if not 8 <= size <= 4096:
        raise UserError(f"--size={size}: must lie in [8, 4096]")
    if not 1 <= quality <= 100:
        raise UserError(f"--quality={quality}: must lie in [1, 100]")
    if not 0.0 <= test_fraction < 1.0:
        raise UserError(f"--test-fraction={test_fraction}: must lie in [0, 1)")
    if seed < 0:
        raise UserError(f"--seed={seed}: must be at least 0")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 0:
        raise UserError(f"--workers={workers}: must be at least 0")
    if val is not None and test_source is not None:
        raise UserError("give --val or --test-source, not both")
    if val is not None and devkit is None and (val_labels is None or synsets is None):
        raise UserError("--val needs its labels: --devkit ILSVRC2012_devkit_t12.tar.gz, or "
                        "--val-labels LOC_val_solution.csv with --synsets LOC_synset_mapping.txt")
    source, out = Path(source), Path(out)
    for src in (source, test_source, val):
        if src is not None and Path(src).is_dir() and _inside(out, Path(src).resolve()):
            raise UserError(f"--out {out}: lies inside the source {src}; choose a folder outside it")
    words: dict[str, str] | None = None
    if devkit is not None:
        words, val_wnids = read_devkit(Path(devkit))
    elif synsets is not None:
        words = read_synset_mapping(Path(synsets))

    # training images per class
    if not source.exists():
        raise UserError(f"{source}: does not exist (expected ILSVRC2012_img_train.tar or an image "
                        f"folder tree)")
    if source.is_dir():
        per_class, odd = list_tree(source, follow_links)
    else:
        per_class, odd = list_train_tar(source)
    classes = sorted(per_class)
    if not classes:
        raise UserError(f"{source}: no classes (expected class folders, or the training tar's "
                        f"<wnid>.tar members)")
    if words is not None:
        unknown = [c for c in classes if c not in words]
        if unknown:
            raise UserError(f"{source}: class '{unknown[0]}' is not a synset of "
                            f"{devkit or synsets} ({len(unknown)} such)")
    index = {c: k for k, c in enumerate(classes)}
    files = [[(*it[:4], k) for it in per_class[c]] for k, c in enumerate(classes)]
    train: list[Item] = [it for fs in files for it in fs]
    test: list[Item] = []
    if val is not None:
        val = Path(val)
        vitems, vodd = list_flat_tar(val) if not val.is_dir() else list_flat_folder(val, follow_links)
        odd += vodd
        if devkit is not None:
            by_name = {f"ILSVRC2012_val_{i:08d}": w for i, w in enumerate(val_wnids, start=1)}
            lab_src = f"{devkit}:data/ILSVRC2012_validation_ground_truth.txt"
        else:
            by_name, lab_src = read_val_solution(Path(val_labels)), str(val_labels)
        for it in vitems:
            stem = Path(it[3]).name.split(".")[0]
            wnid = by_name.get(stem)
            if wnid is None:
                raise UserError(f"{val}: {quote_name(it[3])}: no label for '{stem}' in {lab_src}")
            if wnid not in index:
                raise UserError(f"{val}: {quote_name(it[3])}: its class {wnid} ({lab_src}) is not "
                                f"among the training classes")
            test.append((*it[:4], index[wnid]))
    elif test_source is not None:
        tper, todd = list_tree(Path(test_source), follow_links)
        odd += todd
        extra = sorted(set(tper) - set(classes))
        if extra:
            raise UserError(f"{test_source}: class folder '{extra[0]}' is not among the training "
                            f"classes")
        test = [(*it[:4], index[c]) for c in classes for it in tper.get(c, [])]
    elif test_fraction > 0:
        train = []
        for fs in files:
            k = int(np.ceil(test_fraction * len(fs))) if fs else 0
            train += fs[:len(fs) - k]
            test += fs[len(fs) - k:]
    if not train:
        raise UserError(f"{source}: no training images (expected TREE/<class>/<image>.jpg or the "
                        f"official training tar)")
    train_batches, test_batches = plan_batches(train, test, batch_size, seed)
    all_batches = train_batches + test_batches
    settings = {"size": size, "quality": quality, "batch_size": batch_size, "seed": seed,
                "classes": classes}
    batch_fps = [_fingerprint([[it[3], it[2], it[4]] for it in b]) for b in all_batches]
    fp = _fingerprint([settings, batch_fps])

    # the output folder: empty, or an unfinished (or finished) run of this very plan
    out.mkdir(parents=True, exist_ok=True)
    state_dir = out / STATE_DIR
    plan_file = state_dir / "plan.json"
    if plan_file.is_file():
        try:
            old = json.loads(plan_file.read_text())["fingerprint"]
        except (ValueError, KeyError, OSError, TypeError):
            old = None
        if old != fp:
            raise UserError(f"{out}: holds a conversion of other sources or settings "
                            f"({plan_file}); choose another --out, or empty it")
    elif any(p.name == "batches.meta" or p.name.startswith("data_batch_") for p in out.iterdir()):
        raise UserError(f"{out}: already holds batches not written by this conversion; choose "
                        f"an empty folder")
    else:
        state_dir.mkdir(exist_ok=True)
        atomic_write_bytes(plan_file, lambda f: f.write(json.dumps(
            {"fingerprint": fp, "settings": settings, "batches": len(all_batches)}).encode()))
    for p in out.glob(".data_batch_*.tmp"):  # what a kill left mid-write
        p.unlink(missing_ok=True)
    st = _load_state(state_dir, fp) or {
        "sum_img": np.zeros((size, size, 3), np.int64), "sum_rgb": np.zeros(3, np.int64),
        "sum_outer": np.zeros((3, 3), np.int64), "done": {}}
    todo = []
    for b in range(1, len(all_batches) + 1):
        rec = st["done"].get(b)
        path = out / f"data_batch_{b}"
        if rec is not None and rec["fp"] == batch_fps[b - 1] and path.is_file() \
                and path.stat().st_size == rec["bytes"]:
            continue  # finished and intact
        if rec is not None:  # recorded but missing or changed: take it out of the sums, redo it
            raise UserError(f"{path}: finished by an earlier run but changed or missing since; "
                            f"empty {out} and convert again")
        todo.append(b)
    if todo:
        (out / "batches.meta").unlink(missing_ok=True)  # a reader never sees meta over a partial set
    total_imgs = sum(len(b) for b in all_batches)
    resumed = total_imgs - sum(len(all_batches[b - 1]) for b in todo)
    tasks = [(str(out), b, all_batches[b - 1], classes, size, quality) for b in todo]
    with _progress(total=total_imgs, initial=resumed, unit="img", desc="imagenet",
                   smoothing=0.1) as bar:
        for res in _run(tasks, workers):
            if res["batch"] <= len(train_batches):  # the mean and PCA of the training images
                st["sum_img"] += res["sum_img"]
                st["sum_rgb"] += res["sum_rgb"]
                st["sum_outer"] += res["sum_outer"]
            st["done"][res["batch"]] = {"fp": batch_fps[res["batch"] - 1], "bytes": res["bytes"],
                                        "cases": res["cases"], "skipped": res["skipped"]}
            _save_state(state_dir, fp, st)
            bar.update(len(all_batches[res["batch"] - 1]))
    # stale batches of an earlier, larger run of the same folder cannot exist (the plan matched)
    done = st["done"]
    skipped = odd + [tuple(s) for b in sorted(done) for s in done[b]["skipped"]]
    report = out / REPORT
    atomic_write_bytes(report, lambda f: f.write("".join(
        f"{quote_name(n)}\t{quote_name(r)}\n" for n, r in skipped).encode("utf-8", "replace")))
    ntrain = len(train_batches)
    train_cases = sum(done[b]["cases"] for b in range(1, ntrain + 1))
    if train_cases == 0:
        raise UserError(f"{source}: none of the training images could be read (see {report})")
    pixels = train_cases * size * size
    mean_img = st["sum_img"] / train_cases
    data_mean = mean_img.transpose(2, 0, 1).reshape(-1, 1).astype(np.float32)   # (3·S², 1)
    mu = st["sum_rgb"] / pixels
    cov = st["sum_outer"] / pixels - np.outer(mu, mu)
    evals, evecs = np.linalg.eigh(cov)                                           # ascending
    stdevs = np.sqrt(np.clip(evals, 0, None)).astype(np.float32)                # (3,)
    meta = {"data_mean": data_mean, "color_pca": (stdevs, evecs.astype(np.float32)),
            "label_names": [words[c] for c in classes] if words else list(classes),
            "label_wnids": list(classes), "num_vis": 3 * size * size, "batch_size": batch_size,
            "dp_type": "inet-lr-cropped-jpeg"}
    pickle(out / "batches.meta", meta)
    if skipped:
        first = quote_name(skipped[0][0])
        warnings.warn(f"{len(skipped)} files skipped (first: {first}: {skipped[0][1]}); all are "
                      f"listed in {report}", stacklevel=2)
    return {"train_range": (1, ntrain) if ntrain else None,
            "test_range": (ntrain + 1, len(all_batches)) if test_batches else None,
            "train_cases": train_cases,
            "test_cases": sum(done[b]["cases"] for b in range(ntrain + 1, len(all_batches) + 1)),
            "skipped": len(skipped), "classes": len(classes), "report": report,
            "resumed_batches": len(all_batches) - len(todo)}


def _run(tasks: list, workers: int):
    """Yield convert_batch(task) for every task, in a process pool (workers > 0) or here."""
    if workers == 0 or len(tasks) <= 1:
        for t in tasks:
            yield convert_batch(t)
        return
    ctx = get_context("forkserver")
    ctx.set_forkserver_preload(["port.data.imagenet"])  # imported once, in the fork server
    pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx)
    try:
        pending = {pool.submit(convert_batch, t) for t in tasks}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                try:
                    res = f.result()
                except BrokenProcessPool as e:
                    raise UserError(f"a converter process died ({e}); the finished batches are "
                                    f"kept: run the same command again to go on") from None
                yield res
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

