"""How many training processes a config asks for, known before Lightning starts them."""

from __future__ import annotations

from omegaconf import DictConfig


def planned_processes(cfg: DictConfig) -> int:
    """`devices` x `num_nodes` when `devices` is a count or a list of device ids; 1 per node when it is
    `auto` or -1 (the number of accelerators is only known to Lightning)."""
    devices = cfg.devices
    if isinstance(devices, int) and not isinstance(devices, bool) and devices > 0:
        per_node = devices
    elif isinstance(devices, str) and devices.isdigit() and int(devices) > 0:
        per_node = int(devices)
    elif isinstance(devices, (list, tuple)) or (hasattr(devices, "__len__") and not isinstance(devices, str)):
        per_node = max(1, len(devices))
    else:
        per_node = 1
    return per_node * int(cfg.num_nodes)
