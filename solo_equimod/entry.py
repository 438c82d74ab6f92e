"""The console entry points `solo-equimod-pretrain` and `solo-equimod-linear` (and `main_pretrain.py`,
`main_linear.py` in a checkout): set glibc's malloc for training first, then run the command.

A module of its own because the allocator settings reach a process only through its environment at
start (solo_equimod.run.malloc re-executes it): done here, before `solo_equimod.cli` imports torch, the
re-exec costs one interpreter start instead of a second import of torch."""

from __future__ import annotations

from pathlib import Path

from solo_equimod.run.malloc import reexec_with_malloc_settings


def pretrain(script_dir: Path | None = None) -> None:
    """`solo-equimod-pretrain`: see solo_equimod.cli.pretrain_main."""
    reexec_with_malloc_settings()
    from solo_equimod.cli import pretrain_main

    pretrain_main(script_dir=script_dir)


def linear(script_dir: Path | None = None) -> None:
    """`solo-equimod-linear`: see solo_equimod.cli.linear_main."""
    reexec_with_malloc_settings()
    from solo_equimod.cli import linear_main

    linear_main(script_dir=script_dir)
