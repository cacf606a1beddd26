"""verl's platform for a CPU-only machine (`VERL_PLATFORM=cpu`).

verl 0.9.1 answers every device question through its platform singleton and knows only accelerators; with none
found it falls back to CUDA and the actor dies at the first `get_device_id()`. This platform makes "cpu" the
device: tensors stay in host memory, synchronisation and cache calls are no-ops, and the Ray resource is "GPU" so
that verl's resource pools place on the fake GPUs a CPU job declares (`ray_init.num_gpus`).
"""

from __future__ import annotations

from contextlib import contextmanager
from types import ModuleType
from typing import Any

import torch
from verl.plugin.platform import PlatformBase, PlatformRegistry

from writing_rl.cpu import CPU_PLATFORM


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


def _zero(*args: Any, **kwargs: Any) -> int:
    return 0


class _CpuDeviceModule(ModuleType):
    """`torch.cpu` plus what verl asks of `get_torch_device()` and `torch.cpu` lacks (memory queries, RNG state,
    cache calls), answered as a host without device memory would."""

    def __getattr__(self, name: str) -> Any:
        return getattr(torch.cpu, name)


CPU_DEVICE_MODULE = _CpuDeviceModule("writing_rl.cpu.device")
CPU_DEVICE_MODULE.__dict__.update(
    empty_cache=_nothing, ipc_collect=_nothing, reset_peak_memory_stats=_nothing,
    set_per_process_memory_fraction=_nothing, memory_allocated=_zero, memory_reserved=_zero,
    max_memory_allocated=_zero, max_memory_reserved=_zero, mem_get_info=lambda *a, **k: (0, 0),
    get_rng_state=torch.get_rng_state, set_rng_state=torch.set_rng_state, manual_seed=torch.manual_seed,
    manual_seed_all=torch.manual_seed, get_device_name=lambda *a, **k: "CPU",
)


@PlatformRegistry.register(platform=CPU_PLATFORM)
class CpuPlatform(PlatformBase):
    """Host memory as the device, gloo for collectives."""

    @property
    def device_name(self) -> str:
        return CPU_PLATFORM

    @property
    def vendor_name(self) -> str:
        return CPU_PLATFORM

    @property
    def device_module(self) -> Any:
        return CPU_DEVICE_MODULE

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # never auto-detected: a GPU machine must not end up here because a probe failed
        return False

    def current_device(self) -> Any:
        # `torch.device(0)`, `.to(0)` and `pin_memory()` raise on a CPU build: the device is named, not numbered
        return CPU_PLATFORM

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        return None

    def synchronize(self, device_index: int | None = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"

    @contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def ray_resource_name(self) -> str:
        return "GPU"

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None
