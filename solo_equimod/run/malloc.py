"""Keep freed tensor memory in the process (glibc malloc), so CPU steps grow linearly with the batch.

glibc serves blocks above its mmap threshold (128 KiB, raised adaptively up to 32 MiB) with a fresh
`mmap` and gives them back with `munmap` when freed; the heap's top is also trimmed back to the OS
above `M_TRIM_THRESHOLD`. A training step allocates and frees the same large activations every
step, so without this each step pays for zeroing fresh pages again: about 200,000 minor page faults
a step for tiny_cnn at batch 128-256, and step time grows 2.5-3x from batch 64 to 128 instead of 2x
(BENCHMARKS.md, "CPU steps and glibc's malloc"). `MALLOC_MMAP_MAX_=0` and a large
`MALLOC_TRIM_THRESHOLD_` turn both off.

Why the entry points re-exec themselves with those variables, and not `mallopt` or documentation:
`mallopt(M_MMAP_MAX, 0)` from Python works as well in the process that calls it (measured: after a
few allocations the faults stop either way), but an environment variable also reaches every process
started from this one, whichever way it starts (spawned DataLoader workers, DDP ranks from Lightning's
launcher, evaluation subprocesses), without each of them having to call anything. `execv` keeps the
process id (SLURM and signal handlers see one process) and costs one interpreter start before torch
is imported. A user who sets either variable keeps their own choice. The cost: the process's resident
memory stays at its peak instead of shrinking between steps, which a training process reaches again
every step anyway. A documentation note alone would leave the default slow.
"""

from __future__ import annotations

import os
import platform
import sys

SETTINGS = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}  # 1 GiB: the heap's top is kept


def needs_reexec() -> bool:
    """True on glibc when the user set neither variable (their choice stands)."""
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc" and \
        not any(key in os.environ for key in SETTINGS)


def reexec_with_malloc_settings() -> None:
    """Replace this process by the same command with `SETTINGS` in its environment, when
    `needs_reexec`; otherwise return. Call it first in an entry point, before importing torch."""
    if needs_reexec():
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], {**os.environ, **SETTINGS})
