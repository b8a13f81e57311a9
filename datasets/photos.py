"""Where photos live and how they reach a worker: a folder on the driver's disk, or a URI every node can read.

  a local folder   the driver lists it and reads each photo's bytes; workers get the bytes (through Ray's object
                   store on a cluster), never the driver's path, so no node needs the driver's disk
  a URI            `file://`, `s3://`, `gs://`, `hdfs://`, ... through pyarrow's filesystems (`pip install
                   pyarrow`, part of the `[cluster]` extra): the driver lists it, each worker opens its photos
                   itself, so they do not pass through the driver

A photo travels as a `PhotoRef` (its name, and its bytes or its URI). On the worker, `load_rgb` turns it into
pixels: bytes no decoder takes are an *unreadable* photo (counted and listed by the caller), while a URI the
driver listed and the worker cannot open raises `PhotoUnreachable` naming the file and the node.
"""
from __future__ import annotations

import io
import re
import socket
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from .fer2013 import DatasetError


class PhotoUnreachable(DatasetError):
    """A photo the driver listed that a worker cannot open (its node does not see the location)."""


def is_uri(location: str | Path) -> bool:
    return "://" in str(location)


SECRET_QUERY = re.compile(r"(?i)((?:access|secret|session)_?(?:key|token)|password|token|sig|signature|credential\w*)"
                          r"=([^&#]*)")


def redact(location: str | Path) -> str:
    """`location` fit to print: a URI's credentials (`s3://KEY:SECRET@bucket/...`, and query keys such as
    `secret_key=`, `session_token=`, `sig=`) replaced by `***`; a local path as it is."""
    text = str(location)
    if not is_uri(text):
        return text
    scheme, _, rest = text.partition("://")
    if "@" in rest.split("/", 1)[0]:
        rest = "***@" + rest.split("@", 1)[1]
    return SECRET_QUERY.sub(lambda m: f"{m.group(1)}=***", f"{scheme}://{rest}")


@lru_cache(maxsize=8)
def _filesystem(uri: str):
    """(pyarrow filesystem, path inside it) of a URI; one filesystem per store per process (cached by the URI
    of the folder, whose host, port and query, e.g. `?endpoint_override=host:port&scheme=http`, it keeps)."""
    try:
        from pyarrow import fs
    except ImportError:
        raise DatasetError(f"{uri}: reading URIs needs pyarrow: pip install -e '.[cluster]' "
                           "(or pip install pyarrow)") from None
    try:
        return fs.FileSystem.from_uri(uri)
    except (OSError, ValueError) as e:
        raise DatasetError(f"{redact(uri)}: pyarrow cannot open this location ({redact_text(str(e), uri)})") from None


def redact_text(text: str, uri: str) -> str:
    """`text` (an error from a filesystem) with the secrets of `uri` replaced by `***` wherever they appear."""
    secrets = set()
    head = str(uri).partition("://")[2].split("/", 1)[0]
    if "@" in head:
        secrets.update(p for p in head.split("@", 1)[0].split(":") if p)
    secrets.update(m.group(2) for m in SECRET_QUERY.finditer(str(uri)) if m.group(2))
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class PhotoFolder:
    """A folder of photos on this machine (`Path`) or behind a URI (pyarrow). Paths inside it are `Path`s for
    a local folder and `PurePosixPath`s of the filesystem's own paths for a URI; `root` is one of them. A URI's
    photos reach the workers as (the folder's URI, the photo's path in its filesystem): host, port and query
    survive, and each worker opens one filesystem per folder."""

    def __init__(self, location: str | Path):
        self.location = str(location)
        self._stamps: dict = {}  # (size, mtime_ns) per file, from the listing (no request per photo)
        if is_uri(location):
            self.fs, path = _filesystem(self.location)
            self.root = PurePosixPath(path)
        else:
            self.fs, self.root = None, Path(location)

    def __str__(self) -> str:
        return redact(self.location)  # every message and record names the folder without its credentials

    def _infos(self, folder, recursive: bool):
        from pyarrow import fs
        return self.fs.get_file_info(fs.FileSelector(str(folder), recursive=recursive, allow_not_found=True))

    def is_dir(self) -> bool:
        """Whether the folder exists (as a folder)."""
        if self.fs is None:
            return self.root.is_dir()
        from pyarrow import fs
        return self.fs.get_file_info(str(self.root)).type == fs.FileType.Directory

    def subdirs(self, folder) -> list:
        """The folders directly inside `folder`, sorted."""
        if self.fs is None:
            return sorted(p for p in Path(folder).iterdir() if p.is_dir())
        from pyarrow import fs
        return sorted(PurePosixPath(i.path) for i in self._infos(folder, False) if i.type == fs.FileType.Directory)

    def files(self, folder, suffixes: Iterable[str]) -> list:
        """The files at any depth inside `folder` whose suffix (any case) is in `suffixes`, sorted. For a URI,
        the listing's sizes and times are kept for `stamp`."""
        suffixes = frozenset(suffixes)
        if self.fs is None:
            return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
        from pyarrow import fs
        found = []
        for i in self._infos(folder, True):
            path = PurePosixPath(i.path)
            if i.type == fs.FileType.File and path.suffix.lower() in suffixes:
                self._stamps[path] = (i.size or 0, i.mtime_ns or 0)
                found.append(path)
        return sorted(found)

    def stamp(self, path) -> tuple[int, int]:
        """(size in bytes, modification time in ns) of a file, for listing hashes: from the listing for a URI
        (one request per photo would be one round trip each to the store), from the disk for a local folder."""
        if self.fs is None:
            st = Path(path).stat()
            return st.st_size, st.st_mtime_ns
        if path not in self._stamps:
            info = self.fs.get_file_info(str(path))
            self._stamps[path] = (info.size or 0, info.mtime_ns or 0)
        return self._stamps[path]

    def refs(self, paths: list) -> Iterator["PhotoRef"]:
        """What the workers get for each file, in order: its bytes read here (a local folder; a file this
        process cannot read gets no bytes and is unreadable), or the folder's URI and the file's path."""
        for p in paths:
            name = str(PurePosixPath(*p.relative_to(self.root).parts))
            yield (PhotoRef(name, None, redact(self.location), str(p), self.fs) if self.fs is not None
                   else local_ref(p, name))


def local_ref(path: str | Path, name: str | None = None) -> "PhotoRef":
    """A photo on this machine's disk as a worker gets it: its bytes (none when this process cannot read it)."""
    try:
        return PhotoRef(name or str(path), Path(path).read_bytes(), None)
    except OSError:
        return PhotoRef(name or str(path), None, None)


@dataclass(frozen=True)
class PhotoRef:
    """One photo on its way to a worker: `name` (its path inside the folder), and `data` (its bytes) or `uri`
    (the folder's URI, host, port and query included, its credentials redacted) and `path` (the photo's path in
    that URI's filesystem; None: the URI is the photo's own), with `fs`, the driver's filesystem (pyarrow's own
    object: credentials travel in its options, never in a printed path); neither: the driver could not read it
    (unreadable)."""

    name: str
    data: bytes | None
    uri: str | None = None
    path: str | None = None
    fs: object = field(default=None, repr=False, compare=False)

    def read(self) -> bytes | None:
        """The photo's bytes, on the worker. PhotoUnreachable when a URI cannot be opened here."""
        if self.uri is None:
            return self.data
        try:
            fs, own = (self.fs, None) if self.fs is not None else _filesystem(self.uri)
            with fs.open_input_file(self.path or own) as f:
                return f.readall()
        except (OSError, DatasetError) as e:
            where = f"{redact(self.uri)} ({self.name})" if self.path else redact(self.uri)
            raise PhotoUnreachable(f"{where}: listed by the driver but node {node_name()} cannot read it "
                                   f"({redact_text(str(e), self.uri)}); every node must reach the URI") from None


def node_name() -> str:
    """This process's Ray node id when it is a Ray worker, else the host name."""
    ray = sys.modules.get("ray")  # never imported here only to ask
    if ray is not None and ray.is_initialized():
        return f"{ray.get_runtime_context().get_node_id()[:12]} on {socket.gethostname()}"
    return socket.gethostname()


def decode_rgb(data: bytes | None) -> np.ndarray | None:
    """(H, W, 3) uint8 RGB from an encoded image that OpenCV or Pillow decodes, else None."""
    if not data:
        return None
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is not None:
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None


def load_rgb(ref: PhotoRef) -> np.ndarray | None:
    """The photo's (H, W, 3) uint8 RGB pixels on a worker, or None when it is unreadable."""
    return decode_rgb(ref.read())
