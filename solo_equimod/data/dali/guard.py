"""The import guard: DALI is an optional extra, so say how to install it where it is needed."""

from __future__ import annotations

INSTALL_HINT = 'NVIDIA DALI is not installed; install the extra with `pip install -e ".[dali]"` (nvidia-dali-cuda130)'


def require_dali() -> None:
    """Raise an ImportError that says how to install DALI when it is missing."""
    try:
        import nvidia.dali  # noqa: F401
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
