"""Process-group set-up for ``torchrun``: gloo on CPU, NCCL on GPU; rank 0 alone writes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device: str = "auto") -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1), else run alone."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        torch.cuda.set_device(local_rank)
        chosen = torch.device("cuda", local_rank)
    else:
        chosen = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank, world_size, local_rank, chosen)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively: a GPU that says so, or a processor with
    AVX512-BF16 or AMX-BF16 (read from /proc/cpuinfo: torch has no public CPU query)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def teardown(info: DistInfo, *, finished: bool = True) -> None:
    """Leave the process group. After a finished run every rank first waits for the others:
    rank 0 still writes samples and plots while rank 1 is done, and a gloo peer that exits
    while the other still holds its connection makes that one abort in C++ ("terminate called
    without an active exception"), seen under CPU contention. After an error the barrier is
    skipped, because the other rank may never reach it."""
    if info.enabled and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()
