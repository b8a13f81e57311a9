"""FER2013 CSV loading: `emotion,pixels,Usage` rows -> 48x48 uint8 images, labels, usage, row index.

Two parsers share one contract. The fast path parses the whole decompressed file with a handful of
vectorised numpy passes; whenever it sees anything unexpected it hands over to the strict path, a
plain `csv` loop whose only job is to find the first bad line and say exactly what is wrong with it.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import re
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

try:  # ISA-L decompresses gzip about 3x faster than zlib; same format, optional speed-up
    from isal import igzip as _gzip
    from isal.igzip_lib import IsalError as _IsalError
except ImportError:  # pragma: no cover - isal is a declared dependency
    _gzip = gzip
    _IsalError = zlib.error

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
USAGES = ("Training", "PublicTest", "PrivateTest")
COLUMNS = ("emotion", "pixels", "Usage")
SIDE = 48                 # FER2013 images are SIDE x SIDE grayscale
N_PIXELS = SIDE * SIDE
N_CLASSES = len(EMOTIONS)
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})  # what the CLIs read


class DatasetError(ValueError):
    """A malformed dataset file; the message names the file and, where it applies, the 1-based line."""


@dataclass(frozen=True, eq=False)
class FERData:
    """FER2013 rows held in memory.

    Attributes
    ----------
    images : ndarray of shape (N, 48, 48), uint8
    labels : ndarray of shape (N,), uint8, values 0..6 in `EMOTIONS` order
    usage : ndarray of shape (N,), uint8, index into `USAGES`
    rows : ndarray of shape (N,), int64, 0-based data-row index in the source file (header not counted)
    source_hash : str, sha256 of the source file's bytes ("" when built in memory)
    """

    images: np.ndarray
    labels: np.ndarray
    usage: np.ndarray
    rows: np.ndarray
    source_hash: str = ""

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def split(self, usage: str) -> "FERData":
        """Rows of one Usage value ("Training", "PublicTest" or "PrivateTest"), original order kept."""
        if usage not in USAGES:
            raise ValueError(f"unknown usage {usage!r}; expected one of {', '.join(USAGES)}")
        return self.take(self.usage == USAGES.index(usage))

    def take(self, index: np.ndarray) -> "FERData":
        """Subset by boolean mask or integer indices (positions, not row ids)."""
        return FERData(self.images[index], self.labels[index], self.usage[index], self.rows[index],
                       self.source_hash)

    def counts(self) -> dict[str, dict[str, int]]:
        """Rows per Usage x emotion: {"Training": {"angry": n, ...}, ...}."""
        table = np.zeros((len(USAGES), len(EMOTIONS)), dtype=np.int64)
        np.add.at(table, (self.usage, self.labels), 1)
        return {u: {e: int(table[i, j]) for j, e in enumerate(EMOTIONS)} for i, u in enumerate(USAGES)}


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _raw_chunks(path: Path) -> Iterator[bytes]:
    """Decompressed chunks of the file (gzip detected by magic number, not by name)."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise DatasetError(f"{path}: cannot read file ({e.strerror or e})") from None
    with f:
        magic = f.read(2)
        f.seek(0)
        stream = _gzip.open(f, "rb") if magic == b"\x1f\x8b" else f
        try:
            while chunk := stream.read(_BLOCK):
                yield chunk
        except (OSError, EOFError, zlib.error, _IsalError, ValueError) as e:
            raise DatasetError(f"{path}: truncated or corrupt gzip file ({e})") from None


def _line_blocks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Re-cut chunks so that every block holds whole lines."""
    carry = b""
    for chunk in chunks:
        chunk = carry + chunk
        k = chunk.rfind(b"\n") + 1
        if k:
            yield chunk[:k]
        carry = chunk[k:]
    if carry:
        yield carry


def read_text_bytes(path: str | Path) -> bytes:
    """The file's whole decompressed bytes."""
    return b"".join(_raw_chunks(Path(path)))


def parse_csv_bytes(data: bytes, name: str = "<csv>") -> FERData:
    """Parse FER-format CSV bytes. Raises DatasetError naming `name` and the 1-based line on bad input."""
    blocks = (data[i:i + _BLOCK] for i in range(0, len(data), _BLOCK))
    return _parse(_line_blocks(blocks), lambda: data, name)


def load_csv_uncached(path: str | Path) -> FERData:
    """Load a FER2013 `.csv` / `.csv.gz` without touching any cache.

    Decompression (main thread) overlaps with parsing (worker threads), block by block.
    """
    path = Path(path)
    fer = _parse(_line_blocks(_raw_chunks(path)), lambda: read_text_bytes(path), str(path))
    return FERData(fer.images, fer.labels, fer.usage, fer.rows, file_sha256(path))


def _parse(blocks: Iterator[bytes], whole: Callable[[], bytes], name: str) -> FERData:
    parsed = _parse_fast(blocks)
    if parsed is None:
        return FERData(*_parse_strict(whole(), name))  # raises on the first bad line
    images, labels, usage = parsed
    return FERData(images, labels, usage, np.arange(len(labels), dtype=np.int64))


# --------------------------------------------------------------------------- fast path

def _parse_fast(blocks: Iterator[bytes]):
    """Vectorised parse of the canonical layout; None if anything at all looks unusual.

    Blocks of about 8 MB of whole lines are parsed by worker threads with numpy (which releases the
    GIL) while the caller's iterator goes on decompressing; small blocks keep temporaries in cache.
    """
    first = next(blocks, b"").removeprefix(_BOM)
    nl = first.find(b"\n")
    header = first[:nl if nl >= 0 else len(first)]
    if header.rstrip(b"\r").decode("latin-1").strip() != ",".join(COLUMNS):
        return None
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        futures = [pool.submit(_parse_block, first[nl + 1:])] if nl >= 0 else []
        futures += [pool.submit(_parse_block, b) for b in blocks]
        parts = [f.result() for f in futures]
    parts = [p for p in parts if p != ()]
    if not parts or any(p is None for p in parts):
        return None
    return tuple(np.concatenate(x) for x in zip(*parts))


_BLOCK = 8 << 20
_BOM = b"\xef\xbb\xbf"  # spreadsheet programs start UTF-8 CSV exports with it
_LABEL = re.compile(r"[+-]?[0-9]+")


def _parse_block(data: bytes):
    """Parse a block of whole lines; () for an all-blank block, None if not in canonical form."""
    size = len(data)
    while size and data[size - 1] in b"\r\n\t ":
        size -= 1
    if size == 0:
        return ()
    buf = np.frombuffer(data, dtype=np.uint8, count=size)
    nls = np.flatnonzero(buf == 10)
    starts, ends = np.concatenate(([0], nls + 1)), np.append(nls, size)
    n = len(starts)
    if not (ends > starts).all():  # blank lines inside
        return None
    commas = np.flatnonzero(buf == 44)
    first = np.searchsorted(commas, starts)
    if not (np.searchsorted(commas, ends) - first == 2).all():
        return None
    c1, c2 = commas[first], commas[first + 1]

    # Labels and Usage: short fields, checked per line.
    if not ((c1 == starts + 1).all() and (buf[starts] - np.uint8(48) <= 6).all()):
        return None
    labels = buf[starts] - np.uint8(48)
    usage = np.empty(n, dtype=np.uint8)
    codes = {u.encode(): i for i, u in enumerate(USAGES)}
    for i, (b, e) in enumerate(zip((c2 + 1).tolist(), ends.tolist())):
        u = codes.get(data[b:e].rstrip(b"\r"))
        if u is None:
            return None
        usage[i] = u

    # Pixel fields: every byte inside must be a digit or a space (or CSV quotes at the edges).
    is_d = buf - np.uint8(48) <= 9
    odd = np.flatnonzero(~is_d & (buf != 32))
    inside = np.searchsorted(odd, c2) - np.searchsorted(odd, c1 + 1)
    if inside.any() and not ((buf[c1 + 1] == 34) & (buf[c2 - 1] == 34) & (inside == 2)).all():
        return None

    # Token values from the last digit of each digit run (one label token + 2304 pixel tokens a line).
    last = np.flatnonzero(is_d[:-1] & ~is_d[1:])
    if is_d[-1]:
        last = np.append(last, len(buf) - 1)
    if last.size != n * (N_PIXELS + 1):
        return None
    tok = last.reshape(n, N_PIXELS + 1)
    if not ((tok[:, 0] < c1).all() and (tok[:, 1] > c1).all() and (tok[:, -1] < c2).all()):
        return None
    px = tok[:, 1:].ravel()
    p1, p2, p3 = is_d[px - 1], is_d[px - 2], is_d[px - 3]
    if (p1 & p2 & p3).any():  # four or more digits: leading zeros or > 255, let the strict path judge
        return None
    values = (buf[px] - np.uint8(48)).astype(np.uint16)
    values += 10 * np.where(p1, buf[px - 1] - np.uint8(48), 0).astype(np.uint16)
    values += 100 * np.where(p1 & p2, buf[px - 2] - np.uint8(48), 0).astype(np.uint16)
    if values.max(initial=0) > 255:
        return None
    return values.astype(np.uint8).reshape(n, SIDE, SIDE), labels, usage


# --------------------------------------------------------------------------- strict path

def _parse_strict(data: bytes, name: str):
    """Row-by-row parse; raises DatasetError for the first malformed line (1-based, header = line 1).
    Blank lines are skipped; a row's id stays its data-row number in the file (line - 2)."""
    if not data.strip():
        raise DatasetError(f"{name}: file is empty")
    text = data.removeprefix(_BOM).decode("utf-8", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise DatasetError(f"{name}: file is empty") from None
    header = [h.strip() for h in header]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DatasetError(f"{name}: line 1: missing column(s) {', '.join(missing)}; "
                           f"expected {','.join(COLUMNS)}, found {','.join(header)}")
    ie, ip, iu = (header.index(c) for c in COLUMNS)
    images, labels, usage, rows = [], [], [], []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:  # a field over csv's size limit, a stray quote, a NUL byte
            raise DatasetError(f"{name}: line {reader.line_num}: not a FER2013 row ({e})") from None
        line = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise DatasetError(f"{name}: line {line}: expected {len(header)} fields, found {len(row)}")
        lab = row[ie].strip()
        if not _LABEL.fullmatch(lab):
            raise DatasetError(f"{name}: line {line}: emotion {lab!r} is not an integer")
        if not 0 <= int(lab) <= 6:
            raise DatasetError(f"{name}: line {line}: emotion {lab} is outside 0..6")
        u = row[iu].strip()
        if u not in USAGES:
            raise DatasetError(f"{name}: line {line}: unknown Usage {u!r}; expected one of {', '.join(USAGES)}")
        tokens = row[ip].split()
        if len(tokens) != N_PIXELS:
            raise DatasetError(f"{name}: line {line}: expected {N_PIXELS} pixel values, found {len(tokens)}")
        for j, t in enumerate(tokens):
            if not t.isdigit() or not t.isascii():
                raise DatasetError(f"{name}: line {line}: pixel {j + 1} {t!r} is not an integer")
            if int(t) > 255:
                raise DatasetError(f"{name}: line {line}: pixel {j + 1} value {t} is outside 0..255")
        images.append(np.array(tokens, dtype=np.int64).astype(np.uint8))
        labels.append(int(lab))
        usage.append(USAGES.index(u))
        rows.append(line - 2)
    if not labels:
        raise DatasetError(f"{name}: no data rows after the header")
    return (np.stack(images).reshape(-1, SIDE, SIDE), np.array(labels, dtype=np.uint8),
            np.array(usage, dtype=np.uint8), np.array(rows, dtype=np.int64))
