"""Putting a folder in place with one atomic rename, also over an older folder of the same name.

POSIX `rename` replaces a file or an empty folder atomically, but not a folder with content. On Linux,
`renameat2(RENAME_EXCHANGE)` swaps two paths in one step: the new folder appears at the name in the same
instant the old one leaves it (under the new folder's former name, to be deleted). Where that call is missing
(another OS, an old kernel or C library, a filesystem that refuses it) the old folder is renamed aside first,
the only moment the name is briefly absent.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
from pathlib import Path

AT_FDCWD = -100
RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap paths a and b atomically; False when this system cannot."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: not here
        return False
    raise OSError(errno, os.strerror(errno), str(b))


def replace_folder(new: Path, target: Path) -> None:
    """Move folder `new` to `target` (same filesystem) in one rename; an existing `target` is swapped out in
    that rename and deleted afterwards."""
    new, target = Path(new), Path(target)
    if not target.exists():
        os.rename(new, target)
        return
    if _exchange(new, target):
        shutil.rmtree(new)  # now the old folder
        return
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.rename(target, old)
    os.rename(new, target)
    shutil.rmtree(old)
