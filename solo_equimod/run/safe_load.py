"""Read checkpoint and zoo files without executing pickled code.

`torch.load(weights_only=True)` unpickles only tensors, primitive values and plain containers;
any other object (a class instance whose `__reduce__` could run arbitrary code) stops the load
before it is built. Our Lightning checkpoints and slim zoo files hold nothing else (the config
is stored as a plain dict), so no extra safe globals are needed; a file that needs one is
refused with a message naming it, whatever its origin.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from solo_equimod.errors import ConfigError


class UnsafeCheckpointError(ConfigError):
    """A file that holds pickled objects other than tensors and plain containers."""


class UnreadableCheckpointError(ConfigError):
    """A file that is not a readable torch file (truncated, empty, or another format)."""


# e.g. "Unsupported global: GLOBAL getattr was not an allowed global by default", "Unsupported operand 149"
_WHY = re.compile(r"Unsupported [^\n.]*")


def load_checkpoint_file(path: str | Path, map_location: str | torch.device = "cpu", mmap: bool = False) -> Any:
    """The object stored in `path`, loaded with `weights_only=True`.

    Raises UnsafeCheckpointError (nothing of the file was executed) or UnreadableCheckpointError,
    both naming the file."""
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        found = _WHY.search(str(err))
        what = found.group(0) if found else str(err).splitlines()[0]
        raise UnsafeCheckpointError(
            f"{path} holds pickled objects other than tensors and plain containers ({what}); it was refused "
            f"without running them. solo-equimod checkpoints never contain such objects: this file was made "
            f"by other code, and loading it could execute anything"
        ) from err
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise UnreadableCheckpointError(f"{path} could not be read ({err.__class__.__name__}: {err})") from err


def read_weights(path: Path) -> dict[str, Any]:
    """The mapping stored in a safetensors file (by its name) or a torch file (weights_only=True)."""
    if not path.is_file():
        raise ConfigError(f"weights file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as err:
            raise ConfigError(f"{path} is named .safetensors but is not a safetensors file ({err}); it was refused "
                              f"without unpickling anything: rename a torch state dict to .pt / .pth") from None
    loaded = load_checkpoint_file(path)  # weights_only=True: refuses pickled code, names the file
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} holds a {type(loaded).__name__}, not a mapping of weights")
    return loaded
