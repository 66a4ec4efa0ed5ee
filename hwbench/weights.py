"""ImageNet weights of the pretrained ResNets: which ones a config needs, where torch
keeps them, and fetching them into that cache.

`snakemake prefetch` fills the cache on the submit host (a local rule), so training
jobs on offline compute nodes find the weights there (docs/cluster.md). The module
imports torch only inside `fetch`: the workflow plans `prefetch` without loading it.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

# torchvision's IMAGENET1K_V1 weights (ResNet18_Weights, ResNet152_Weights); the 8 hex
# digits in each name are the start of the file's SHA-256 (torch.hub's convention).
# tests/test_weights.py checks these against the installed torchvision.
IMAGENET_URLS = {
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "resnet152": "https://download.pytorch.org/models/resnet152-394f9c45.pth",
}
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,})\.")


class WeightsUnavailable(RuntimeError):
    """Weights are missing and may not (or could not) be downloaded; says what to do."""


def torch_home(configured: str | None = None) -> Path:
    """The torch cache folder: config ``torch_home``, else what torch.hub uses
    ($TORCH_HOME, else $XDG_CACHE_HOME/torch, else ~/.cache/torch)."""
    if configured:
        return Path(configured).expanduser().absolute()
    default = os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(os.path.expanduser(os.getenv("TORCH_HOME", default)))


def cache_file(name: str, home: Path) -> Path:
    """Where torch.hub (and so torchvision) looks for the ImageNet weights of ``name``."""
    return home / "hub" / "checkpoints" / os.path.basename(imagenet_url(name))


def imagenet_url(name: str) -> str:
    try:
        return IMAGENET_URLS[name]
    except KeyError:
        raise ValueError(
            f"no ImageNet weights registered for model {name!r}; "
            f"pretrained: imagenet works with {sorted(IMAGENET_URLS)}"
        ) from None


def _models(node) -> Iterator[dict]:
    if isinstance(node, dict):
        if "name" in node and "pretrained" in node:
            yield node
        for value in node.values():
            yield from _models(value)
    elif isinstance(node, list):
        for value in node:
            yield from _models(value)


def imagenet_models(config: dict) -> list[str]:
    """Model names that some part of ``config`` loads with ``pretrained: imagenet``."""
    return sorted({m["name"] for m in _models(config) if m.get("pretrained") == "imagenet"})


def fetch(url: str, dest: str | os.PathLike, offline: bool = False) -> Path:
    """Make ``dest`` a verified copy of ``url``: its SHA-256 must start with the hex
    digits in the file name. An existing verified file is kept; a corrupt one is
    replaced. ``offline`` forbids the download and names what to do instead."""
    dest = Path(dest)
    prefix = _hash_prefix(dest.name)
    if dest.exists() and _sha256(dest).startswith(prefix):
        return dest
    if offline:
        raise WeightsUnavailable(
            f"{dest} is missing (or does not verify) and downloads are off (offline: true "
            f"or HWBENCH_OFFLINE=1). Run `snakemake prefetch` with the same config on a "
            f"machine with internet, or copy {url} to {dest}."
        )
    import torch.hub

    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        # streams to a temporary file in dest's folder, checks the hash prefix, renames
        torch.hub.download_url_to_file(url, str(dest), hash_prefix=prefix, progress=False)
    except (OSError, RuntimeError) as err:
        raise WeightsUnavailable(
            f"could not fetch {url} into {dest}: {err}. Copy the file there by hand "
            f"(same name) from a machine with internet."
        ) from err
    return dest


def _hash_prefix(name: str) -> str:
    found = _HASH_IN_NAME.search(name)
    if not found:
        raise ValueError(f"{name}: expected '<model>-<sha256 prefix>.pth' (torch.hub naming)")
    return found.group(1)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def job_environment(config: dict) -> dict[str, str]:
    """Environment the workflow gives every job: TORCH_HOME from config ``torch_home``
    and HWBENCH_OFFLINE=1 from config ``offline`` (each only when set)."""
    env = {}
    if config.get("torch_home"):
        env["TORCH_HOME"] = str(torch_home(config["torch_home"]))
    if config.get("offline"):
        env["HWBENCH_OFFLINE"] = "1"
    return env
