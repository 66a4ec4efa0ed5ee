"""Training throughput of the engine against its limit and a conventional DataLoader loop.

Three measurements, same model, batch size, optimizer and number of images:

- limit: forward/backward/step on one fixed batch already on the device;
- engine: :func:`hwbench.engine.fit` (tensors on the device, index permutation);
- dataloader: a torchvision-style loop, a Dataset of uint8 arrays with per-sample
  ``ToTensor`` + ``Normalize`` and a shuffling ``DataLoader`` (``--workers``).

Each is repeated (``--repeats``, interleaved) and the best kept, since a shared
machine's load swings. Prints images/s and the ratios engine/limit (target >= 0.9 on the CPU) and
engine/dataloader, and appends them to reports/bench.csv.

    python benchmarks/engine.py --device cpu
    python benchmarks/engine.py --device cuda --model resnet18 --n 20000
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwbench.data import to_model_input  # noqa: E402
from hwbench.engine import TrainConfig, autocast, fit, pick_device, seed_everything  # noqa: E402
from hwbench.models import build_model  # noqa: E402
from hwbench.report import append_bench_rows  # noqa: E402

BENCH_CSV = Path(__file__).resolve().parents[1] / "reports" / "bench.csv"


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_model(args, device):
    seed_everything(0)
    model = build_model(args.model, 10).to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    return model


def train_step(model, opt, x, y, device):
    with autocast(device, True):
        loss = F.cross_entropy(model(x).float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def bench_limit(args, device, images):
    model = make_model(args, device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = to_model_input(torch.from_numpy(images[: args.batch_size]), device, normalize="mnist")
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch_size,), device=device)
    steps = args.n // args.batch_size
    for _ in range(args.warmup):
        train_step(model, opt, x, y, device)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        train_step(model, opt, x, y, device)
    sync(device)
    return steps * args.batch_size / (time.perf_counter() - t0)


def bench_engine(args, device, images, labels):
    model = make_model(args, device)
    data = {
        "x": to_model_input(torch.from_numpy(images), device, normalize="mnist"),
        "y": torch.from_numpy(labels).to(device),
    }
    # One warm-up epoch, then time the next ones by the engine's own per-epoch clock.
    cfg = TrainConfig(epochs=1 + args.epochs, batch_size=args.batch_size, seed=0)
    result = fit(model, data, cfg, None, metrics_fn=None, device=device, progress=False)
    timed = result.history[1:]
    return len(images) * len(timed) / sum(r["time_s"] for r in timed)


class ArrayDataset(torch.utils.data.Dataset):
    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), int(self.labels[i])


def bench_dataloader(args, device, images, labels):
    from torchvision import transforms

    transform = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]
    )
    loader = torch.utils.data.DataLoader(
        ArrayDataset(images, labels, transform),
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=args.workers > 0,
    )
    model = make_model(args, device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def epoch():
        seen = 0
        for x, y in loader:
            x = x.to(device, non_blocking=True)
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            train_step(model, opt, x, y.to(device, non_blocking=True), device)
            seen += len(x)
        sync(device)
        return seen

    epoch()  # warm-up (starts the workers)
    t0 = time.perf_counter()
    seen = sum(epoch() for _ in range(args.epochs))
    return seen / (time.perf_counter() - t0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--model", default="base_cnn")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n", type=int, default=2048, help="training images per epoch")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (best kept)")
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs (after one warm-up)")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up steps of the limit")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-save", action="store_true", help="don't append to reports/bench.csv")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, args.n).astype(np.int64)

    # Interleaved repeats, best of each: on a shared machine the least disturbed
    # measurement is the closest to what the code itself costs.
    runs = {"limit": [], "engine": [], "dataloader": []}
    for _ in range(args.repeats):
        runs["limit"].append(bench_limit(args, device, images))
        runs["engine"].append(bench_engine(args, device, images, labels))
        runs["dataloader"].append(bench_dataloader(args, device, images, labels))
        print("  this repeat:", {k: round(v[-1]) for k, v in runs.items()}, flush=True)
    limit, engine, loader = (max(runs[k]) for k in ("limit", "engine", "dataloader"))
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu {platform.machine()} {torch.get_num_threads()} threads"
    )
    note = (
        f"{args.model} batch {args.batch_size} n {args.n} workers {args.workers} on {where}; "
        f"best of {args.repeats}; load {os.getloadavg()[0]:.1f}; torch {torch.__version__}"
    )
    print(f"device: {where}; model {args.model}, batch {args.batch_size}, {args.n} images/epoch")
    print(f"limit (fixed batch):   {limit:10.0f} images/s")
    print(f"engine:                {engine:10.0f} images/s")
    print(f"DataLoader loop:       {loader:10.0f} images/s ({args.workers} workers)")
    print(f"engine / limit:        {engine / limit:10.3f}")
    print(f"engine / DataLoader:   {engine / loader:10.3f}")
    if not args.no_save:
        values = {
            "limit": (limit, "images/s"),
            "engine": (engine, "images/s"),
            "dataloader": (loader, "images/s"),
            "engine_over_limit": (engine / limit, "ratio"),
            "engine_over_dataloader": (engine / loader, "ratio"),
        }
        append_bench_rows(
            BENCH_CSV,
            [
                {"benchmark": "engine", "metric": f"{device.type}_{k}", "value": v, "unit": u}
                | {"note": note}
                for k, (v, u) in values.items()
            ],
        )
        print(f"appended to {BENCH_CSV}")


if __name__ == "__main__":
    main()
