"""Download a zoo file into the cache: atomic, size- and sha256-verified, offline once cached.

We use the standard library's urllib (not torch.hub's downloader) because we need one code path
for http(s), file:// and plain paths, a size check against truncated transfers, and the removal
of bad files, with messages that name the URL and the expected and actual values.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from http.client import HTTPException
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from solo_equimod.run import atomic

CACHE_ENV = "SOLO_EQUIMOD_CACHE"
CHUNK = 1 << 20


class ZooError(RuntimeError):
    """A zoo file could not be fetched or did not verify; the message says which and why."""


def cache_dir(override: str | Path | None = None) -> Path:
    """`override`, else `$SOLO_EQUIMOD_CACHE`, else `~/.cache/solo_equimod`."""
    return Path(override or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "solo_equimod")


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _local_path(url: str, base_dir: Path) -> Path | None:
    """The file a file:// URL or a plain path names (relative paths from `base_dir`); None for http(s)."""
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https"):
        return None
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter: a Windows drive, i.e. a path
        raise ZooError(f"unsupported URL scheme {parsed.scheme!r} in {url}; use http(s)://, file:// or a path")
    return Path(url) if Path(url).is_absolute() else base_dir / url


def _open(url: str, base_dir: Path, timeout: float) -> BinaryIO:
    local = _local_path(url, base_dir)
    try:
        if local is not None:
            return open(local, "rb")
        return urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (scheme checked above)
    except urllib.error.HTTPError as err:
        raise ZooError(f"download of {url} failed: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, OSError) as err:
        raise ZooError(f"cannot open {url}: {getattr(err, 'reason', err)}") from err


def _check(path: Path, url: str, sha256: str, size: int) -> None:
    """Raise ZooError (after deleting `path`) unless it has `size` bytes and the `sha256` digest."""
    actual_size = path.stat().st_size
    problem = None
    if actual_size != size:
        problem = f"size {actual_size} bytes, expected {size} (truncated or wrong file)"
    elif (actual := sha256_of(path)) != sha256:
        problem = f"sha256 {actual}, expected {sha256}"
    if problem:
        path.unlink(missing_ok=True)
        raise ZooError(f"{url}: {problem}; the file was removed. Download it again; if this repeats, the "
                       f"server does not serve the file the manifest lists")


def fetch(url: str, sha256: str, size: int, filename: str, cache: str | Path | None = None,
          base_dir: str | Path = ".", timeout: float = 60.0) -> Path:
    """The verified local copy of `url` at `<cache>/<filename>`, downloaded if absent.

    A cached file is re-verified and used without network. The transfer goes to a temporary
    file in the cache folder that is renamed only after its size and hash match, so an
    interrupted or bad download never becomes `<cache>/<filename>`."""
    folder = cache_dir(cache)
    target = folder / filename
    if target.is_file():
        _check(target, str(target), sha256, size)
        return target
    try:  # files get the usual permissions (0666 less the umask), so a shared cache works
        folder.mkdir(parents=True, exist_ok=True)
        with _open(url, Path(base_dir), timeout) as src:
            atomic.replace_with(target, lambda out: _download(src, out, url, sha256, size),
                                f".{filename}.{os.getpid()}.partial")  # unique: a shared cache may see two downloads
    except OSError as err:  # read-only, not a folder, disk full
        raise ZooError(f"cannot write to the zoo cache {folder} ({err.strerror or err}); pass --cache or set "
                       f"${CACHE_ENV} to a writable folder") from err
    return target


def _download(src: BinaryIO, out: BinaryIO, url: str, sha256: str, size: int) -> None:
    """Copy `src` to `out` and verify it before `atomic.replace_with` renames it into the cache."""
    try:
        shutil.copyfileobj(src, out, CHUNK)
    except (HTTPException, OSError) as err:
        raise ZooError(f"download of {url} was interrupted after {out.tell()} of {size} bytes "
                       f"({err.__class__.__name__}); nothing was cached, try again") from err
    out.flush()
    _check(Path(out.name), url, sha256, size)
