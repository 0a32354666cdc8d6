"""Safe output: atomic writes, and no silent overwrite."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from golddigger.errors import GoldDiggerError

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "check_writable"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_writable(path: Path, overwrite: bool = False) -> None:
    """Refuse to replace an existing file unless ``overwrite`` is set.

    Raises
    ------
    GoldDiggerError
        If ``path`` exists and ``overwrite`` is False.
    """
    if path.exists() and not overwrite:
        raise GoldDiggerError(f"{path} already exists; use --overwrite to replace it "
                              "(or --resume to skip finished images)")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place on success.

    On any exception (Ctrl-C included) the temporary file is removed and ``path`` is
    left as it was, so a reader never sees a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp makes the file private (0600); results are ordinary files: honour the umask
    os.chmod(tmp_path, 0o666 & ~_umask())
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))
