"""The checkpoint file: named numeric arrays in one uncompressed ``.npz`` (zip) archive.

Writing is atomic: the archive goes to a temporary file ``.<name>.<random>.tmp`` in the target's
directory, is flushed and fsync'ed, then renamed over the target (``os.replace``) and the
directory fsync'ed, so a crash leaves either the old file or the new one, never a torn file.
While it is written the temporary file holds an exclusive ``flock``; a writer killed on the way
(``kill -9``, power cut) leaves its temporary file behind unlocked, and the next write to the same
path removes such leftovers.

Reading is bounded by the file itself: every entry must be stored uncompressed (as
``numpy.savez`` writes) with its declared size equal to its stored size, the entries together no
larger than the file, and each entry's ``.npy`` header must describe exactly the bytes it holds,
all checked before any array is allocated. A zip bomb (an entry that inflates to gigabytes) or an
``.npy`` header that claims a huge shape is refused without reading it. Only plain numeric dtypes
are read; nothing is unpickled.

This module knows nothing of networks; :mod:`vgfast.checkpoint` and :class:`vgfast.Network`
build on it.
"""
import os
import re
import stat
import tempfile
import time
import zipfile

import numpy as np

try:  # POSIX advisory locks mark a temporary file as being written
    import fcntl
except ImportError:  # pragma: no cover - Windows: an open file cannot be deleted there anyway
    fcntl = None

#: an archive with more entries than this is not one of ours
MAX_ENTRIES = 256
#: a temporary file untouched for this long, and not locked, is a dead writer's leftover
STALE_SECONDS = 10.0
#: numeric dtype kinds an entry may hold (bool, signed, unsigned, float)
_KINDS = "biuf"


class ArchiveError(ValueError):
    """The file is not a well-formed archive of numeric arrays (the message says why)."""


# ---------------------------------------------------------------------------- paths


def check_path(path, name, must_exist=False):
    """``path`` as a str; TypeError/ValueError naming ``name`` when it cannot be a file path
    (and, to write, when its directory does not exist or it is a directory)."""
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path (str or os.PathLike); got "
                        f"{type(path).__name__}")
    path = os.fspath(path)
    if isinstance(path, bytes) or path == "":
        raise ValueError(f"{name} must be a non-empty str path; got {path!r}")
    if not must_exist:
        d = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(d):
            raise ValueError(f"{name}: the directory {d!r} of {path!r} does not exist")
        if os.path.isdir(path):
            raise ValueError(f"{name}: {path!r} is a directory; give a file path")
    return path


# ---------------------------------------------------------------------------- writing


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


def _tmp_pattern(base):
    # tempfile.mkstemp(prefix="." + base + ".", suffix=".tmp"): 8 random name characters
    return re.compile(r"\." + re.escape(base) + r"\.[A-Za-z0-9_]{8}\.tmp\Z")


def remove_stale_temporaries(path, keep=None):
    """Delete the temporary files that dead writers of ``path`` left in its directory.

    A candidate is a regular file named as :func:`write` names its temporary files, not
    ``keep``, untouched for :data:`STALE_SECONDS`, and not locked by a live writer (POSIX
    ``flock``; the lock dies with its process). Returns the names removed. Errors are ignored:
    cleaning is best effort and never stops a save.
    """
    d = os.path.dirname(os.path.abspath(path))
    pattern = _tmp_pattern(os.path.basename(path))
    removed = []
    try:
        names = os.listdir(d)
    except OSError:
        return removed
    now = time.time()
    for name in names:
        full = os.path.join(d, name)
        if not pattern.match(name) or (keep is not None and os.path.abspath(keep) == full):
            continue
        try:
            st = os.lstat(full)
            if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < STALE_SECONDS:
                continue
            if fcntl is not None:
                fd = os.open(full, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fails while a writer lives
                    if os.fstat(fd).st_ino != st.st_ino:
                        continue
                    os.unlink(full)
                finally:
                    os.close(fd)
            else:  # pragma: no cover - Windows refuses to delete a file open for writing
                os.unlink(full)
            removed.append(name)
        except OSError:
            continue
    return removed


def write(path, arrays):
    """Write ``arrays`` (name -> ndarray) to ``path`` atomically as an uncompressed ``.npz``.

    The directory of ``path`` must exist. Leftover temporary files of earlier writes to the same
    path that were killed are removed. Returns ``path``.
    """
    path = check_path(path, "path")
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    replaced = False
    try:
        with os.fdopen(fd, "wb") as f:
            if fcntl is not None:
                try:  # marks the file as live for remove_stale_temporaries
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    pass
            remove_stale_temporaries(path, keep=tmp)
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
            try:
                os.chmod(tmp, 0o666 & ~_UMASK)
            except OSError:
                pass
            if os.name == "posix":  # rename while still locked: no moment unlocked and unnamed
                os.replace(tmp, path)
                replaced = True
        if not replaced:  # pragma: no cover - Windows cannot rename an open file
            os.replace(tmp, path)
            replaced = True
    except BaseException:
        if not replaced:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        raise
    _fsync_dir(d)
    return path


def _fsync_dir(d):
    if os.name != "posix":
        return
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- reading


class Reader:
    """An open archive whose entries have been checked against the file; read arrays by name.

    >>> with Reader(path) as r:
    ...     r.names, r.array("params", max_bytes=8 * n)
    """

    def __init__(self, path):
        self.path = path
        size = os.path.getsize(path)  # FileNotFoundError etc. go to the caller as they are
        with open(path, "rb") as f:
            magic = f.read(6)
        if magic == b"\x93NUMPY":
            raise ArchiveError("a single .npy array, not an .npz archive")
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
            raise ArchiveError(f"not a readable .npz archive: {e}") from None
        try:
            self.entries = self._check_entries(self._zip.infolist(), size)
        except BaseException:
            self._zip.close()
            raise

    @staticmethod
    def _check_entries(infos, size):
        if len(infos) > MAX_ENTRIES:
            raise ArchiveError(f"{len(infos)} entries (at most {MAX_ENTRIES})")
        entries, total = {}, 0
        for info in infos:
            name = info.filename
            if not name.endswith(".npy") or "/" in name or name[:-4] in entries:
                raise ArchiveError(f"unexpected entry {name!r}")
            if info.compress_type != zipfile.ZIP_STORED:
                raise ArchiveError(f"entry {name!r} is compressed; vgfast writes uncompressed "
                                   f"archives only")
            if info.file_size != info.compress_size:
                raise ArchiveError(f"entry {name!r} declares {info.file_size} bytes but stores "
                                   f"{info.compress_size}")
            total += info.compress_size
            if total > size:
                raise ArchiveError(f"the entries declare more bytes ({total}) than the file "
                                   f"holds ({size})")
            entries[name[:-4]] = info
        return entries

    @property
    def names(self):
        return set(self.entries)

    def nbytes(self, name):
        """Declared size of an entry (its .npy header included)."""
        return self.entries[name].file_size

    def array(self, name, max_bytes=None):
        """Entry ``name`` as an ndarray of a numeric dtype, its .npy header checked against the
        entry's size (and ``max_bytes``) before the data is allocated."""
        info = self.entries[name]
        if max_bytes is not None and info.file_size > max_bytes + 4096:
            raise ArchiveError(f"entry {name!r} holds {info.file_size} bytes, more than "
                               f"expected ({max_bytes} + its header)")
        with self._zip.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ArchiveError(f"entry {name!r}: unsupported .npy version {version}")
            if dtype.kind not in _KINDS or dtype.hasobject or dtype.fields is not None or \
                    dtype.subdtype is not None:
                raise ArchiveError(f"entry {name!r} has dtype {dtype}; only plain numbers are "
                                   f"read")
            count = 1
            for s in shape:
                count *= int(s)
            data = count * dtype.itemsize
            if data != info.file_size - f.tell():
                raise ArchiveError(f"entry {name!r}: its header describes {data} bytes of data "
                                   f"but the entry holds {info.file_size - f.tell()}")
            buf = bytearray(data)
            if f.readinto(memoryview(buf)) != data or f.read(1):  # (also checks the CRC)
                raise ArchiveError(f"entry {name!r} is truncated")
        a = np.frombuffer(buf, dtype=dtype, count=count)
        if fortran:
            return a.reshape(shape[::-1]).T
        return a.reshape(shape)

    def close(self):
        self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
