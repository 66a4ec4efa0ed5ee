"""The adaptation study's frozen base CNN: its data, training and features.

The torch half of the study, kept apart from :mod:`hwbench.studies.adaptation` (numpy
only) so the per-writer loop starts without torch. Training is the shared engine's
:func:`hwbench.engine.fit`; this module only picks the data (the writer split, the
configured classes) and writes the features the styles and the loop need.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hwbench import charsets as cs
from hwbench import engine
from hwbench.data import input_options, to_model_input
from hwbench.metrics import accuracy
from hwbench.models import model_from_config
from hwbench.store import atomic_path, load_processed, read_split, write_json

WRITER_SPLITS = ("train", "val", "app")  # split names of the `writer` scheme
BASE_MODEL = {"name": "base_cnn"}  # the paper's network (hwbench.models)


@dataclass
class SplitArrays:
    """One split of the writer scheme: images, local labels, dataset rows, writers."""

    x: torch.Tensor  # uint8 N x 28 x 28
    y: np.ndarray  # int64 local labels 0..C-1
    index: np.ndarray  # rows of images.npy
    writer: np.ndarray  # writer ids (str)


def class_labels(labels: np.ndarray, charsets: Sequence[str] | None = None) -> np.ndarray:
    """The dataset labels the study keeps, sorted: those of ``charsets`` (global ids of
    the synthetic data) or every label present."""
    labels = np.unique(np.asarray(labels))
    if charsets:
        keep = np.zeros(len(labels), bool)
        for name in cs.check_charsets(charsets):
            ids = cs.label_range(name)
            keep |= (labels >= ids.start) & (labels < ids.stop)
        labels = labels[keep]
        if len(labels) == 0:
            raise ValueError(f"no images of charsets {list(charsets)} in this dataset")
    return labels


def load_writer_splits(
    processed_dir: str | os.PathLike,
    writer_csv: str | os.PathLike,
    charsets: Sequence[str] | None = None,
) -> tuple[dict[str, SplitArrays], np.ndarray]:
    """train / val / app of the writer split, restricted to the kept classes.

    Returns the splits and the kept dataset labels (local label i = ``classes[i]``).
    """
    data = load_processed(processed_dir)
    split = read_split(writer_csv)
    names = set(split["split"])
    missing = [s for s in WRITER_SPLITS if s not in names]
    if missing:
        raise ValueError(
            f"{writer_csv}: no {missing} rows; the adaptation study needs the writer scheme's "
            f"train/val/app split (it has {sorted(names)})"
        )
    labels = data.meta["label"].to_numpy()
    classes = class_labels(labels, charsets)
    local = np.full(int(labels.max()) + 1, -1, np.int64)
    local[classes] = np.arange(len(classes))
    out = {}
    for name in WRITER_SPLITS:
        index = split.loc[split["split"] == name, "index"].to_numpy()
        index = np.sort(index[local[labels[index]] >= 0])
        if len(index) == 0:
            raise ValueError(f"{writer_csv}: split {name!r} has no images of the kept classes")
        out[name] = SplitArrays(
            x=torch.from_numpy(np.ascontiguousarray(data.images[index])),
            y=local[labels[index]],
            index=index,
            writer=data.meta["writer"].astype(str).to_numpy()[index],
        )
    return out, classes


def load_job_splits(
    images_npy: str | os.PathLike, writer_csv: str | os.PathLike, charsets, threads: int
) -> tuple[dict[str, SplitArrays], np.ndarray]:
    """A CNN job's start: ``threads`` torch threads, then :func:`load_writer_splits`."""
    torch.set_num_threads(threads)
    return load_writer_splits(Path(images_npy).parent, writer_csv, charsets)


def _data(part: SplitArrays, device, model_cfg: Mapping) -> dict[str, torch.Tensor]:
    x = to_model_input(part.x, device, **input_options(model_cfg))
    return {"x": x, "y": torch.from_numpy(part.y).to(device)}


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
    best.pt) and ``eval.json``: the accuracy of the kept weights (best val loss) on
    train, val and app, like the paper's section 4.4.2. Returns that dict.
    """
    device = engine.pick_device() if device is None else torch.device(device)
    engine.seed_everything(seed)
    cfg = engine.TrainConfig.from_dict(dict(train or {}), seed=seed)
    model = model_from_config(model_cfg, num_classes)
    data = {name: _data(part, device, model_cfg) for name, part in splits.items()}
    engine.fit(model, data["train"], cfg, run_dir, eval_sets={"val": data["val"]}, device=device)
    load_weights(model, run_dir)
    model.to(device).eval()
    result = {
        f"{name}_acc": accuracy(
            part["y"].cpu().numpy(), engine.predict(model, part["x"]).argmax(1).cpu().numpy()
        )
        for name, part in data.items()
    }
    result.update(
        model=dict(model_cfg), num_classes=num_classes, device=engine.device_description(device)
    )
    write_json(Path(run_dir) / "eval.json", result)
    return result


def weights_file(run_dir: str | os.PathLike) -> Path:
    """The weights the study keeps: best val loss (best.pt), else the final ones."""
    run_dir = Path(run_dir)
    best = run_dir / engine.BEST_MODEL
    return best if best.exists() else run_dir / engine.FINAL_MODEL


def load_weights(model: torch.nn.Module, run_dir: str | os.PathLike) -> None:
    state = torch.load(weights_file(run_dir), map_location="cpu", weights_only=True)
    model.load_state_dict(state)


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
    load_weights(model, run_dir)
    model.to(device).eval()
    arrays: dict[str, np.ndarray] = {"classes": np.asarray(classes)}
    for name, part in splits.items():
        x = to_model_input(part.x, device, **input_options(model_cfg))
        feats = engine.predict(model.features, x, batch_size)
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
