"""The adaptation study's jobs that need torch: the frozen base CNN and its features.

Kept apart from :mod:`hwbench.studies.adaptation.loop` (numpy only) so the per-writer
loop starts without torch. Training is the shared engine's :func:`hwbench.engine.fit`;
this module only picks the data (the writer split, the configured classes, through
:func:`hwbench.data.select`) and writes the features the styles and the loop need.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hwbench import engine
from hwbench.data import batch_transform, charset_classes, select
from hwbench.metrics import accuracy
from hwbench.models import model_from_config
from hwbench.store import atomic_path, load_processed, read_split
from hwbench.studies.adaptation.spec import BASE_MODEL, WRITER_SPLITS


@dataclass
class SplitArrays:
    """One split of the writer scheme: images, local labels, dataset rows, writers."""

    x: torch.Tensor  # uint8 N x 28 x 28
    y: np.ndarray  # int64 local labels 0..C-1
    index: np.ndarray  # rows of images.npy
    writer: np.ndarray  # writer ids (str)


def kept_classes(meta, charsets: Sequence[str] | None, where: str) -> list[str]:
    """The label names the study keeps, in label order: those of ``charsets`` present
    in the dataset, or every class present."""
    present = meta.drop_duplicates("label").sort_values("label")["label_name"].astype(str)
    if not charsets:
        return present.tolist()
    wanted = set(charset_classes(charsets))
    kept = [c for c in present if c in wanted]
    if not kept:
        raise ValueError(f"{where}: no images of charsets {list(charsets)}")
    return kept


def load_writer_splits(
    processed_dir: str | os.PathLike,
    writer_csv: str | os.PathLike,
    charsets: Sequence[str] | None = None,
) -> tuple[dict[str, SplitArrays], np.ndarray]:
    """train / val / app of the writer split, restricted to the kept classes.

    Returns the splits and the kept dataset labels (local label i = ``classes[i]``).
    """
    data = load_processed(processed_dir, mmap=True)  # only the selected rows are read
    split = read_split(writer_csv)
    missing = [s for s in WRITER_SPLITS if s not in set(split["split"])]
    if missing:
        raise ValueError(
            f"{writer_csv}: no {missing} rows; the adaptation study needs the writer scheme's "
            f"train/val/app split (it has {sorted(set(split['split']))})"
        )
    classes = kept_classes(data.meta, charsets, str(processed_dir))
    out = {}
    for name in WRITER_SPLITS:
        part = select(data, split, [name], classes=classes, where=f"{writer_csv} ({name})")
        x, _ = part.tensors()
        out[name] = SplitArrays(x, part.labels, part.index, part.writers)
    label_of = data.meta.drop_duplicates("label_name").set_index("label_name")["label"]
    return out, label_of.loc[classes].to_numpy()


def load_job_splits(
    images_npy: str | os.PathLike, writer_csv: str | os.PathLike, charsets, threads: int
) -> tuple[dict[str, SplitArrays], np.ndarray]:
    """A CNN job's start: ``threads`` torch threads, then :func:`load_writer_splits`."""
    torch.set_num_threads(threads)
    return load_writer_splits(Path(images_npy).parent, writer_csv, charsets)


def _data(part: SplitArrays) -> dict[str, torch.Tensor]:
    """The engine's data dict: the uint8 images (model input one batch at a time)."""
    return {"x": part.x, "y": torch.from_numpy(part.y)}


def train_base(
    splits: Mapping[str, SplitArrays],
    num_classes: int,
    run_dir: str | os.PathLike,
    *,
    model_cfg: Mapping = BASE_MODEL,
    train: Mapping | None = None,
    seed: int = 0,
    device=None,
) -> dict:
    """Train the base CNN on train, validated on val, with the shared engine.

    Writes the engine's files into ``run_dir`` (metrics.csv, checkpoint, model.pt,
    best.pt) and ``eval.json`` (the engine's result record): the accuracy of the kept
    weights (best val loss) on train, val and app, like the paper's section 4.4.2, and
    the split sizes. Returns that record.
    """
    device = engine.pick_device() if device is None else torch.device(device)
    engine.seed_everything(seed)
    cfg = engine.TrainConfig.from_dict(dict(train or {}), seed=seed)
    model = model_from_config(model_cfg, num_classes)
    data = {name: _data(part) for name, part in splits.items()}
    transform = batch_transform(model_cfg)
    result = engine.fit(
        model,
        data["train"],
        cfg,
        run_dir,
        eval_sets={"val": data["val"]},
        device=device,
        fingerprint={"model": dict(model_cfg), "num_classes": num_classes},
        restore="best",
        transform=transform,
    )
    model.eval()
    metrics = {
        f"{name}_acc": accuracy(
            part["y"].numpy(),
            engine.predict(model, part["x"], transform=transform, device=device)
            .argmax(1)
            .cpu()
            .numpy(),
        )
        for name, part in data.items()
    }
    metrics.update({f"{name}_images": len(part["y"]) for name, part in data.items()})
    metrics.update({f"{name}_writers": len(set(part.writer)) for name, part in splits.items()})
    return engine.write_result(
        Path(run_dir) / "eval.json",
        result,
        metrics,
        model=dict(model_cfg),
        num_classes=num_classes,
    )


def weights_file(run_dir: str | os.PathLike) -> Path:
    """The weights the study keeps: best val loss (best.pt), else the final ones."""
    run_dir = Path(run_dir)
    best = run_dir / engine.BEST_MODEL
    return best if best.exists() else run_dir / engine.FINAL_MODEL


def extract_features(
    splits: Mapping[str, SplitArrays],
    classes: np.ndarray,
    run_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    model_cfg: Mapping = BASE_MODEL,
    device=None,
    batch_size: int = 1024,
) -> None:
    """Penultimate features of every image and the CNN's app predictions -> one .npz.

    Keys: ``classes`` (dataset label of each local label); per split s in train, val,
    app: ``s_features`` (float32 N x D), ``s_label``, ``s_index``, ``s_writer``; and
    ``app_pred`` (the frozen CNN's prediction).
    """
    device = engine.pick_device() if device is None else torch.device(device)
    model = model_from_config(model_cfg, len(classes))
    engine.load_weights(model, weights_file(run_dir))
    model.to(device).eval()
    arrays: dict[str, np.ndarray] = {"classes": np.asarray(classes)}
    transform = batch_transform(model_cfg)
    for name, part in splits.items():
        feats = engine.predict(
            model.features, part.x, batch_size, transform=transform, device=device
        )
        arrays[f"{name}_features"] = feats.cpu().numpy().astype(np.float32)
        arrays[f"{name}_label"] = part.y
        arrays[f"{name}_index"] = part.index
        arrays[f"{name}_writer"] = part.writer.astype(str)
        if name == "app":
            with torch.no_grad():
                # The head on the features: the same as model(x) in eval mode.
                logits = model.head(feats.to(device))
            arrays["app_pred"] = logits.argmax(1).cpu().numpy()
    with atomic_path(out_path) as tmp:
        np.savez(tmp, **arrays)
