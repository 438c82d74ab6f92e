"""`solo_equimod.run.malloc.reexec_with_malloc_settings`: the entry points' large freed blocks stay in the process.

Reference: the same allocation loop in a process whose user chose glibc's default behaviour
(`MALLOC_TRIM_THRESHOLD_` set to the default 128 KiB, which the re-exec respects). A 64 MiB tensor allocated and freed
costs ~16,000 minor page faults every time under glibc's defaults (mmap + munmap, the pages zeroed
afresh); re-executed with `MALLOC_MMAP_MAX_=0`, after 10 warm-up allocations 20 more fault none.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from solo_equimod.run.malloc import SETTINGS
from tests.conftest import REPO

CHILD = """
import os, resource
from solo_equimod.run.malloc import reexec_with_malloc_settings
reexec_with_malloc_settings()
import torch
print(os.getpid(), os.environ.get("MALLOC_MMAP_MAX_"))
for _ in range(10):  # the first few allocations fault their pages in either way, while the heap grows
    torch.ones(16 * 1024 * 1024)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    torch.ones(16 * 1024 * 1024)  # 64 MiB, freed at once
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _run(**env: str) -> tuple[int, int, str, int]:
    """(pid started, pid that printed, MALLOC_MMAP_MAX_ seen, minor faults of the 20 allocations)."""
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    proc = subprocess.Popen([sys.executable, "-c", CHILD], cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env={**clean, "PYTHONPATH": str(REPO), **env})
    out = proc.communicate(timeout=120)[0].split()
    assert proc.returncode == 0
    return proc.pid, int(out[0]), out[1], int(out[2])


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's malloc")
def test_the_reexec_keeps_the_pid_and_large_freed_blocks() -> None:
    started, printed, mmap_max, faults = _run()
    assert (printed, mmap_max) == (started, "0")  # execve: the same process, with the settings
    assert faults < 1000  # reuse; the default costs 20 x 16,384 (below)


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's malloc")
def test_a_users_own_malloc_setting_stands() -> None:
    _, _, mmap_max, faults = _run(MALLOC_TRIM_THRESHOLD_="131072")
    assert mmap_max == "None" and faults > 20 * 10_000  # not re-executed: every allocation faults again
