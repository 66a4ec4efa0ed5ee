"""Where a job trains: the device (and, with several GPUs, the claim on one), seeds,
autocast and CUDA's fast paths."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("hwbench.engine")


def _free_memory_per_gpu() -> list[int]:
    """Free memory of each visible GPU, via nvidia-smi (no CUDA context) if it runs."""
    with contextlib.suppress(OSError, subprocess.SubprocessError, ValueError):
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        free = [int(v) for v in out.split()]
        if len(free) == torch.cuda.device_count():
            return free
    return [torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())]


def pick_device(preference: str = "auto") -> torch.device:
    """``"cpu"``, ``"cuda"`` (error without one) or ``"auto"`` (CUDA when present).

    With several GPUs and no CUDA_VISIBLE_DEVICES (Snakemake sets none for local
    jobs), each job claims a GPU no other hwbench job holds, most free memory first
    (:func:`claim_gpu`), so concurrent local jobs spread out even when they start
    together; set CUDA_VISIBLE_DEVICES to pin a job (SLURM does it for you).
    """
    if preference == "cpu":
        return torch.device("cpu")
    if preference not in ("auto", "cuda"):
        raise ValueError(f"device={preference!r}: use 'auto', 'cuda' or 'cpu'")
    if not torch.cuda.is_available():
        if preference == "cuda":
            raise RuntimeError("device 'cuda' requested but torch sees no CUDA GPU")
        return torch.device("cpu")
    count = torch.cuda.device_count()
    if count == 1 or os.environ.get("CUDA_VISIBLE_DEVICES"):
        return torch.device("cuda", 0)
    global _GPU_CHOICE
    if _GPU_CHOICE is None:  # once per process: later calls keep the same GPU
        _GPU_CHOICE = claim_gpu(_free_memory_per_gpu(), _gpu_lock_dir())
    return torch.device("cuda", _GPU_CHOICE[0])


# (GPU index, open lock file or None) this process chose; the lock is held until it exits
_GPU_CHOICE: tuple[int, object | None] | None = None


def _gpu_lock_dir() -> str:
    """A lock folder of this user's own: /tmp is shared, and another user's lock file
    (or a link planted there) must neither stop nor redirect this job's claim."""
    if os.environ.get("HWBENCH_GPU_LOCK_DIR"):
        return os.environ["HWBENCH_GPU_LOCK_DIR"]
    folder = Path(tempfile.gettempdir()) / f"hwbench-locks-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    info = folder.lstat()
    if folder.is_symlink() or info.st_uid != os.getuid() or info.st_mode & 0o077:
        log.warning(
            "%s is not a private folder of this user; GPU claims go to a fresh folder "
            "(set HWBENCH_GPU_LOCK_DIR to choose one)",
            folder,
        )
        return tempfile.mkdtemp(prefix="hwbench-locks-")
    return str(folder)


def claim_gpu(free_memory: list[int], lock_dir: str | os.PathLike) -> tuple[int, object | None]:
    """The GPU a new local job should use, and the open lock file that claims it.

    Free memory alone cannot separate jobs that start in the same instant (none has
    allocated yet), so each job takes an exclusive ``flock`` on a per-GPU file, most
    free GPU first; the kernel drops the lock when the process ends, crash or not.
    When every GPU is claimed the most free one is shared and no lock is returned.
    A lock file this process may not open (another user's, or a link) counts as
    claimed, with a warning naming it.
    """
    order = sorted(range(len(free_memory)), key=lambda i: -free_memory[i])
    for index in order:
        path = Path(lock_dir) / f"hwbench-gpu{index}.lock"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        except OSError as exc:  # PermissionError, ELOOP (a link), read-only folder
            log.warning("cannot open GPU lock %s (%s); GPU %d counts as claimed", path, exc, index)
            continue
        handle = os.fdopen(fd, "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return index, handle
    return order[0], None


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (call before building a model)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def uses_fp16(device: torch.device, amp: bool) -> bool:
    """fp16 autocast (with a GradScaler) on GPUs without bf16, e.g. V100 and T4."""
    return device.type == "cuda" and amp and not torch.cuda.is_bf16_supported()


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on GPUs that support it, fp16 on others; nothing on the CPU."""
    if device.type == "cuda" and enabled:
        dtype = torch.float16 if uses_fp16(device, True) else torch.bfloat16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def _use_cuda_fast_paths(device: torch.device) -> None:
    """TF32 matmuls and cuDNN autotuning: the studies' shapes are fixed within a job."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
