"""Knowledge transfer between character-recognition tasks (Kooverjee et al.; Figs. 2-6).

Three experiment sets, each a (source task, target task) pair; per set three modes:

* ``control``: a randomly initialised network trained on the target task;
* ``frozen``: the source model with only its final layer (``model.head``) trained on
  the target; every other parameter keeps the source weights and BatchNorm layers
  keep the source running statistics (the engine holds them in eval mode);
* ``finetuned``: the source model with every layer trained on the target.

What is particular to this paper, on top of the shared engine, models and metrics:

* a *task* is a dataset, the charsets whose characters are its classes (label =
  position in that list, so real datasets and the synthetic one are selected the same
  way, by ``label_name``) and a train/test split;
* the transfer of a source model onto a target task (:func:`transfer_model`): the
  head keeps the source rows of the classes both tasks share (``head_init: shared``)
  or starts fresh (``fresh``);
* per-epoch metrics: test macro-F1 and per-class accuracy (:func:`epoch_metrics`);
* the run summary (F1 after epochs 1 and 2, peak F1 and its epoch, final F1, epochs
  run), the table with the paper's findings beside and the figures.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hwbench import charsets as cs
from hwbench.store import Processed, load_processed, read_split

log = logging.getLogger("hwbench.transfer")

MODES = ("control", "frozen", "finetuned")
MODE_TITLES = {"control": "control", "frozen": "frozen", "finetuned": "fine-tuned"}
TRANSFER_MODES = ("frozen", "finetuned")  # the modes that start from the source model
HEAD_INITS = ("shared", "fresh")
SPLIT_FILE_SCHEMES = ("stratified", "writer")
SOURCE_SPLIT = "source_split"  # split by the dataset's own partition column (NIST hsf_N)
CLASS_ACC = "class_acc_"  # per-class accuracy columns: test_class_acc_<character>
SUMMARY_METRICS = ("f1_epoch1", "f1_epoch2", "peak_f1", "peak_epoch", "final_f1", "epochs_run")


# --- tasks and their data -----------------------------------------------------------


def task_classes(charsets: Sequence[str]) -> list[str]:
    """The characters of a task's classes, in label order (charsets concatenated)."""
    charsets = cs.check_charsets(charsets)
    if not charsets:
        raise ValueError("a transfer task needs at least one charset")
    chars = [c.label_name for name in charsets for c in cs.classes(name)]
    if len(set(chars)) != len(chars):
        raise ValueError(f"charsets {charsets} repeat a character")
    return chars


def class_positions(meta: pd.DataFrame, classes: Sequence[str], where: str) -> np.ndarray:
    """Each row's position in ``classes`` by its ``label_name`` (-1: not a task class)."""
    if "label_name" not in meta.columns:
        raise ValueError(f"{where} has no label_name column; rebuild the processed dataset")
    lookup = {c: i for i, c in enumerate(classes)}
    names = meta["label_name"].astype(str)
    return names.map(lookup).fillna(-1).astype(np.int64).to_numpy()


def split_names(
    meta: pd.DataFrame, split_spec: Mapping, split_frame: pd.DataFrame | None, where: str
) -> np.ndarray:
    """The split name of every row of ``meta`` under ``split_spec`` ('' where none).

    ``scheme: source_split`` reads the dataset's own partition column (MNIST
    train/test, NIST hsf_0..hsf_7); a split-file scheme reads ``split_frame``
    (columns index, split) from data/splits/<dataset>/<scheme>.csv.
    """
    scheme = split_spec["scheme"]
    if scheme == SOURCE_SPLIT:
        return meta["source_split"].astype(str).to_numpy()
    if split_frame is None:
        raise ValueError(f"{where}: scheme {scheme!r} needs its split file")
    if "resample" in split_frame.columns:
        raise ValueError(f"{where}: scheme {scheme!r} has resamples; use stratified or writer")
    names = np.full(len(meta), "", dtype=object)
    index = split_frame["index"].to_numpy()
    if len(index) and (index.min() < 0 or index.max() >= len(meta)):
        raise ValueError(f"{where}: split indices exceed the {len(meta)} images; rebuild it")
    names[index] = split_frame["split"].astype(str).to_numpy()
    return names


def role_masks(names: np.ndarray, split_spec: Mapping, where: str) -> tuple[np.ndarray, ...]:
    """(train, test) boolean masks: ``test`` lists test split names, ``train`` the
    training ones (left out: every row not in test)."""
    test = np.isin(names, list(split_spec["test"]))
    if split_spec.get("train"):
        train = np.isin(names, list(split_spec["train"]))
    else:
        train = ~test & (names != "")
    overlap = sorted(set(split_spec.get("train") or []) & set(split_spec["test"]))
    if overlap:
        raise ValueError(f"{where}: splits {overlap} are both train and test")
    present = sorted(set(names.tolist()) - {""})
    for role, mask in (("train", train), ("test", test)):
        if not mask.any():
            raise ValueError(
                f"{where}: no {role} rows for split {dict(split_spec)}; the data has splits "
                f"{present[:20]}"
            )
    return train, test


@dataclass
class TaskData:
    """A task's images (uint8 N x H x W) and 0-based labels, split into train and test."""

    classes: list[str]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def describe(self) -> str:
        return (
            f"{len(self.classes)} classes, {len(self.y_train)} train / "
            f"{len(self.y_test)} test images"
        )


def select_task(
    data: Processed, task: Mapping, split_frame: pd.DataFrame | None = None, where: str = "task"
) -> TaskData:
    """The images of ``task`` (``charsets``, ``split``) from a processed dataset."""
    classes = task_classes(task["charsets"])
    labels = class_positions(data.meta, classes, where)
    names = split_names(data.meta, task["split"], split_frame, where)
    train, test = role_masks(names, task["split"], where)
    in_task = labels >= 0
    if not in_task.any():
        found = sorted(data.meta["label_name"].astype(str).unique())[:20]
        raise ValueError(f"{where}: no image of charsets {task['charsets']}; it has {found}")
    missing = [classes[i] for i in sorted(set(range(len(classes))) - set(labels[train & in_task]))]
    if missing:
        log.warning("%s: classes without training images: %s", where, missing)

    def part(mask):
        idx = np.flatnonzero(mask & in_task)
        x = torch.from_numpy(np.ascontiguousarray(data.images[idx]))
        return x, torch.from_numpy(labels[idx])

    return TaskData(classes, *part(train), *part(test))


def load_task(
    processed_dir: str | Path, task: Mapping, split_csv: str | Path | None = None
) -> TaskData:
    """:func:`select_task` on data/processed/<dataset> (+ its split file if the scheme has one)."""
    where = f"{processed_dir} (task {task['dataset']}:{'+'.join(task['charsets'])})"
    split_frame = read_split(split_csv) if split_csv is not None else None
    return select_task(load_processed(processed_dir), task, split_frame, where)


# --- models -----------------------------------------------------------------------


def make_model(model_cfg: Mapping, num_classes: int):
    """The study's network (``model`` section, model.schema.yaml) with ``num_classes`` outputs.

    ImageNet weights are refused: control runs must start from random weights.
    """
    from hwbench.models import model_from_config

    if model_cfg.get("pretrained"):
        raise ValueError(
            f"transfer.model.pretrained = {model_cfg['pretrained']!r}: the control runs start "
            "from random weights and the others from the source model; set it to null"
        )
    return model_from_config(model_cfg, num_classes)


def transfer_head(model, source_classes: Sequence[str], target_classes, head_init: str):
    """Give ``model`` (carrying the source weights) a head for ``target_classes``.

    ``shared``: a class of both tasks keeps its source row of the final layer (so a
    digits -> digits transfer keeps the whole source model); the others start fresh.
    ``fresh``: a new final layer. Returns the number of rows taken from the source.
    """
    if head_init not in HEAD_INITS:
        raise ValueError(f"head_init={head_init!r}: use one of {list(HEAD_INITS)}")
    old = model.head
    if old.out_features != len(source_classes):
        raise ValueError(
            f"the source model has {old.out_features} outputs but {len(source_classes)} classes"
        )
    new = model.replace_head(len(target_classes))
    if head_init == "fresh":
        return 0
    source_row = {c: i for i, c in enumerate(source_classes)}
    copied = 0
    with torch.no_grad():
        for j, c in enumerate(target_classes):
            if c in source_row:
                new.weight[j] = old.weight[source_row[c]]
                new.bias[j] = old.bias[source_row[c]]
                copied += 1
    return copied


def transfer_model(
    mode: str,
    model_cfg: Mapping,
    target_classes: Sequence[str],
    source_state: Mapping | None = None,
    source_classes: Sequence[str] | None = None,
    head_init: str = "shared",
):
    """The model a ``mode`` run starts from, and the parameter prefixes it trains.

    control: random initialisation, everything trains. frozen / finetuned: the
    source model's weights (and BatchNorm statistics) with the head adapted by
    :func:`transfer_head`; frozen trains ``["head"]`` only, finetuned everything
    (``None``). Seed the RNGs first: fresh weights come from torch's generator.
    """
    if mode not in MODES:
        raise ValueError(f"transfer mode {mode!r}; choose one of {list(MODES)}")
    if mode == "control":
        return make_model(model_cfg, len(target_classes)), None
    if source_state is None or source_classes is None:
        raise ValueError(f"mode {mode!r} needs the source model's weights and classes")
    model = make_model(model_cfg, len(source_classes))
    model.load_state_dict(source_state)
    copied = transfer_head(model, source_classes, target_classes, head_init)
    log.info("%s: source weights loaded, %d head rows kept from the source", mode, copied)
    return model, (["head"] if mode == "frozen" else None)


def train_config(train_cfg: Mapping, seed: int, trainable: list[str] | None = None):
    """The engine's TrainConfig of one run (``train`` section, train.schema.yaml).

    The study fixes what its protocol needs: the run's seed, the early stop watching
    the test loss (the paper's |L_test(k) - L_test(k-1)| < stop_eps) and the trainable
    parameters of the mode.
    """
    from hwbench.engine import TrainConfig

    return TrainConfig.from_dict(
        train_cfg, seed=seed, monitor="test_loss", mode="min", trainable=trainable
    )


def to_input(x: torch.Tensor, model_cfg: Mapping, device) -> torch.Tensor:
    """uint8 images -> the model's float input (resized to ``input_size`` once for all)."""
    from hwbench.data import input_options, to_model_input

    return to_model_input(x, device, **input_options(model_cfg))


# --- per-epoch metrics -------------------------------------------------------------


def epoch_metrics(classes: Sequence[str]):
    """A metrics_fn for the engine: accuracy, macro-F1 and per-class accuracy.

    Macro-F1 averages over the classes present in labels or predictions, as
    scikit-learn's ``f1_score(average="macro")`` does; per-class accuracy (recall)
    is NaN for a class without test images.
    """
    from hwbench.engine import main_output
    from hwbench.metrics import accuracy, macro_f1, per_class_accuracy, predictions

    classes = list(classes)

    def metrics(outputs, data) -> dict[str, float]:
        y_true = data["y"].cpu().numpy()
        y_pred = predictions(main_output(outputs))
        row = {"acc": accuracy(y_true, y_pred), "f1": macro_f1(y_true, y_pred)}
        per_class = per_class_accuracy(y_true, y_pred, num_classes=len(classes))
        row.update({f"{CLASS_ACC}{c}": float(v) for c, v in zip(classes, per_class, strict=True)})
        return row

    return metrics


# --- one training job ----------------------------------------------------------------


def tensors_sha256(tensors) -> str:
    """Checksum of tensors' contents (CPU copies), for the engine's checkpoint fingerprint."""
    digest = hashlib.sha256()
    for t in tensors:
        digest.update(str((t.dtype, tuple(t.shape))).encode())
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def train_run(
    model,
    trainable,
    data: TaskData,
    model_cfg: Mapping,
    train_cfg: Mapping,
    seed: int,
    run_dir: str | Path,
    device=None,
) -> dict:
    """Train ``model`` on ``data`` with the engine; the eval.json content of the run.

    The engine writes metrics.csv, checkpoint.pt and model.pt (final weights)
    into ``run_dir`` and resumes an interrupted run from its checkpoint, unless the
    data or the starting weights (e.g. a retrained source model) differ from the
    checkpoint's: their checksums are part of its fingerprint.
    """
    from hwbench.engine import fit, pick_device

    fingerprint = {
        "data_sha256": tensors_sha256([data.x_train, data.y_train, data.x_test, data.y_test]),
        "init_sha256": tensors_sha256(model.state_dict().values()),
        "classes": list(data.classes),
    }
    device = pick_device() if device is None else torch.device(device)
    train = {"x": to_input(data.x_train, model_cfg, device), "y": data.y_train}
    test = {"x": to_input(data.x_test, model_cfg, device), "y": data.y_test}
    result = fit(
        model,
        train,
        train_config(train_cfg, seed, trainable),
        run_dir,
        eval_sets={"test": test},
        metrics_fn=epoch_metrics(data.classes),
        device=device,
        fingerprint=fingerprint,
    )
    history = result.metrics
    return {
        "classes": data.classes,
        "n_train": len(data.y_train),
        "n_test": len(data.y_test),
        "seed": seed,
        "stop_reason": result.stop_reason,
        "device": result.device,
        "wall_s": result.wall_s,
        "summary": run_summary(history),
        "history": history.to_dict(orient="records"),
    }


def source_job(
    processed_dir, split_csv, task: Mapping, model_cfg, train_cfg, seed, run_dir
) -> dict:
    """Pre-train the source model of ``task``; run_dir/model.pt is what transfers start from."""
    from hwbench.engine import seed_everything

    data = load_task(processed_dir, task, split_csv)
    log.info("source task %s", data.describe())
    seed_everything(seed)
    model, _ = transfer_model("control", model_cfg, data.classes)
    return train_run(model, None, data, model_cfg, train_cfg, seed, run_dir)


def transfer_job(
    processed_dir,
    split_csv,
    target: Mapping,
    mode: str,
    model_cfg,
    train_cfg,
    seed,
    run_dir,
    source_model=None,
    source_eval: Mapping | None = None,
    head_init: str = "shared",
) -> dict:
    """Train one mode on the target task, from the source model file unless control."""
    from hwbench.engine import seed_everything

    data = load_task(processed_dir, target, split_csv)
    log.info("target task %s, mode %s", data.describe(), mode)
    state = classes = None
    if mode != "control":
        state = torch.load(source_model, map_location="cpu", weights_only=True)
        classes = list(source_eval["classes"])
    seed_everything(seed)
    model, trainable = transfer_model(mode, model_cfg, data.classes, state, classes, head_init)
    out = train_run(model, trainable, data, model_cfg, train_cfg, seed, run_dir)
    if mode != "control":
        out["source_classes"] = classes
        out["source_model"] = str(source_model)
    return out


# --- summaries, table, findings ------------------------------------------------------


def run_summary(history: pd.DataFrame, metric: str = "test_f1") -> dict[str, float]:
    """F1 after epochs 1 and 2, peak F1 and its (first) epoch, final F1, epochs run.

    An epoch the run did not reach (early stop) gives NaN.
    """
    f1 = history.set_index("epoch")[metric].astype(float)
    if f1.empty:
        raise ValueError("empty training history")
    return {
        "f1_epoch1": float(f1.get(1, math.nan)),
        "f1_epoch2": float(f1.get(2, math.nan)),
        "peak_f1": float(f1.max()),
        "peak_epoch": int(f1.idxmax()),
        "final_f1": float(f1.iloc[-1]),
        "epochs_run": int(len(f1)),
    }


# The paper's findings per set (paper numbering, Table I) and mode. Numbers are read
# from its text: sets 1 and 2 plateau / peak at the F1 quoted, set 3 frozen has a peak
# F1 error of about 42 %; None where the paper gives no number.
PAPER_SETS = {
    1: "MNIST -> NIST digits",
    2: "MNIST -> NIST digits + letters",
    3: "NIST digits -> NIST letters",
}
PAPER = {
    (1, "control"): (0.98, None, "plateaus near 0.98 F1; same as fine-tuned after epoch 2"),
    (1, "frozen"): (None, None, "worst of the three; still improving at epoch 20"),
    (1, "finetuned"): (0.98, None, "better than control in epochs 1-2, then the same (~0.98)"),
    (2, "control"): (0.82, 6, "peaks just above 0.82 F1 around epoch 6, then declines"),
    (2, "frozen"): (None, None, "worst of the three; digits far better than letters"),
    (2, "finetuned"): (0.82, 6, "like control; better and less variable at first; peak ~0.82"),
    (3, "control"): (None, None, "above fine-tuned"),
    (3, "frozen"): (0.58, None, "worst of the three; peak F1 error about 42%"),
    (3, "finetuned"): (None, None, "slightly below control"),
}


def paper_frame() -> pd.DataFrame:
    """The paper's values per (paper_set, mode): peak_f1, peak_epoch, finding."""
    rows = [
        {"paper_set": s, "mode": m, "peak_f1": f1, "peak_epoch": ep, "finding": text}
        for (s, m), (f1, ep, text) in PAPER.items()
    ]
    frame = pd.DataFrame(rows)
    return frame.astype({"peak_f1": float, "peak_epoch": float})


def runs_frame(evals: Sequence[Mapping], sets: Mapping[str, Mapping]) -> pd.DataFrame:
    """One row per run: set, paper_set (from ``sets``), mode, seed and the summary metrics."""
    rows = []
    for e in evals:
        if e["set"] not in sets:
            raise ValueError(f"run of set {e['set']!r}, which the config's sets do not list")
        paper_set = sets[e["set"]].get("paper_set")
        rows.append(
            {"set": e["set"], "paper_set": paper_set, "mode": e["mode"], "seed": e["seed"]}
            | e["summary"]
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        raise ValueError("no transfer runs to report")
    return frame


def _mean(agg: pd.DataFrame, set_name: str, mode: str, metric: str) -> float:
    row = agg[(agg["set"] == set_name) & (agg["mode"] == mode)]
    return float(row[f"{metric}_mean"].iloc[0]) if len(row) else math.nan


def _sd(agg: pd.DataFrame, set_name: str, mode: str, metric: str) -> float:
    row = agg[(agg["set"] == set_name) & (agg["mode"] == mode)]
    sd = float(row[f"{metric}_sd"].iloc[0]) if len(row) else math.nan
    return 0.0 if math.isnan(sd) else sd


def check_finding(agg: pd.DataFrame, set_name: str, paper_set: int, mode: str):
    """(what was checked, "yes"/"no"/"") for one row: does our run show the paper's finding?

    Comparisons use the means over runs; "" where the other modes are missing.
    """

    def m(mode_, metric):
        return _mean(agg, set_name, mode_, metric)

    def verdict(ok):
        return "" if ok is None else ("yes" if ok else "no")

    others = [x for x in MODES if x != "frozen"]
    if mode == "frozen":
        rest = [m(x, "peak_f1") for x in others]
        if any(math.isnan(v) for v in rest):
            return "frozen peak F1 below control and fine-tuned", ""
        return "frozen peak F1 below control and fine-tuned", verdict(
            m("frozen", "peak_f1") < min(rest)
        )
    if paper_set == 1:
        c1, c2 = m("control", "f1_epoch1"), m("control", "f1_epoch2")
        f1_, f2 = m("finetuned", "f1_epoch1"), m("finetuned", "f1_epoch2")
        if mode == "finetuned":
            what = "fine-tuned F1 above control after epochs 1 and 2"
            ok = None if math.isnan(c1 + c2 + f1_ + f2) else (f1_ > c1 and f2 > c2)
            return what, verdict(ok)
        what = "final F1 of control and fine-tuned within max(sd, 0.01)"
        a, b = m("control", "final_f1"), m("finetuned", "final_f1")
        tol = max(
            _sd(agg, set_name, "control", "final_f1"),
            _sd(agg, set_name, "finetuned", "final_f1"),
            0.01,
        )
        return what, verdict(None if math.isnan(a + b) else abs(a - b) <= tol)
    if paper_set == 2:
        what = f"{MODE_TITLES[mode]} peaks before its last epoch and ends lower"
        peak, final = m(mode, "peak_f1"), m(mode, "final_f1")
        ok = m(mode, "peak_epoch") < m(mode, "epochs_run") and final < peak
        return what, verdict(ok)
    if paper_set == 3:
        what = "control peak F1 above fine-tuned"
        a, b = m("control", "peak_f1"), m("finetuned", "peak_f1")
        return what, verdict(None if math.isnan(a + b) else a > b)
    return "", ""


F1_METRICS = ("f1_epoch1", "f1_epoch2", "peak_f1", "final_f1")
EPOCH_METRICS = ("peak_epoch", "epochs_run")


def _ordered(runs: pd.DataFrame, set_order: Sequence[str]) -> pd.DataFrame:
    """Runs sorted by the config's set order, then control, frozen, fine-tuned, seed."""
    key_set = {s: i for i, s in enumerate(set_order)}
    key_mode = {m: i for i, m in enumerate(MODES)}
    order = runs.assign(_s=runs["set"].map(key_set), _m=runs["mode"].map(key_mode))
    return order.sort_values(["_s", "_m", "seed"]).drop(columns=["_s", "_m"])


def set_titles(sets: Mapping[str, Mapping]) -> dict[str, str]:
    """Set name -> figure/table title: its ``title``, else "<paper set>: <name>"."""
    return {
        name: spec.get("title")
        or (f"set {spec['paper_set']}: {name}" if spec.get("paper_set") else name)
        for name, spec in sets.items()
    }


def transfer_table(
    evals: Sequence[Mapping], sets: Mapping[str, Mapping]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(display table, aggregated numbers) of reports/transfer.csv.

    One row per set x mode: mean ± sd over runs of the summary metrics, the paper's
    peak F1 / peak epoch (and our difference) where it gives one, its finding for
    that row, what we checked and whether our runs agree.
    """
    from hwbench import report

    titles = set_titles(sets)
    runs = _ordered(runs_frame(evals, sets), list(sets))
    keys = ["set", "paper_set", "mode"]
    agg = report.aggregate(runs, keys, SUMMARY_METRICS)
    paper = paper_frame()
    for metric in ("peak_f1", "peak_epoch"):
        agg = report.join_paper(
            agg, paper.rename(columns={metric: "paper"}), ["paper_set", "mode"], metric
        )
    shown = report.format_table(agg, keys, F1_METRICS, digits=3)
    epochs = report.format_table(agg, keys, EPOCH_METRICS, digits=1)
    table = shown[keys].copy()
    table.insert(1, "title", [titles[s] for s in agg["set"]])
    table.insert(len(table.columns), "n", agg["peak_f1_n"].astype(int).to_numpy())
    for col in ("f1_epoch1", "f1_epoch2", "peak_f1", "peak_f1_paper", "peak_f1_diff"):
        table[col] = shown[col]
    for col in ("peak_epoch", "peak_epoch_paper", "peak_epoch_diff", "epochs_run"):
        table[col] = epochs[col]
    table["final_f1"] = shown["final_f1"]
    findings = paper.set_index(["paper_set", "mode"])["finding"]
    table["paper_finding"] = [
        findings.get((p, m), "") if not pd.isna(p) else ""
        for p, m in zip(agg["paper_set"], agg["mode"], strict=True)
    ]
    checks = [
        check_finding(agg, s, int(p), m) if not pd.isna(p) else ("", "")
        for s, p, m in zip(agg["set"], agg["paper_set"], agg["mode"], strict=True)
    ]
    table["checked"] = [c[0] for c in checks]
    table["agrees"] = [c[1] for c in checks]
    table["mode"] = table["mode"].map(MODE_TITLES)
    table["paper_set"] = [("" if pd.isna(p) else int(p)) for p in agg["paper_set"]]
    return table, agg


# --- figures -------------------------------------------------------------------------


MODE_COLORS = {"control": "tab:blue", "frozen": "tab:red", "finetuned": "tab:green"}


def curves(evals: Sequence[Mapping], metric: str = "test_f1") -> pd.DataFrame:
    """Long table set, mode, seed, epoch, value of one per-epoch metric."""
    rows = []
    for e in evals:
        for h in e["history"]:
            rows.append(
                {
                    "set": e["set"],
                    "mode": e["mode"],
                    "seed": e["seed"],
                    "epoch": h["epoch"],
                    "value": h[metric],
                }
            )
    return pd.DataFrame(rows)


def _band(ax, frame: pd.DataFrame, label: str, color: str) -> None:
    """Mean per epoch with a mean ± sd band over the runs that reached the epoch."""
    stats = frame.groupby("epoch")["value"].agg(["mean", "std", "count"]).reset_index()
    sd = stats["std"].fillna(0.0)
    ax.plot(stats["epoch"], stats["mean"], marker="o", ms=3, color=color, label=label)
    ax.fill_between(stats["epoch"], stats["mean"] - sd, stats["mean"] + sd, color=color, alpha=0.2)


def plot_f1_curves(evals: Sequence[Mapping], titles: Mapping[str, str], path) -> None:
    """Test macro-F1 per epoch, a band over runs, one panel per set (Figs. 2, 3, 5)."""
    from hwbench.report import new_figure, save_figure

    data = curves(evals)
    sets = list(titles)
    fig, axes = new_figure(1, len(sets), figsize=(4.2 * len(sets), 3.6), squeeze=False)
    for ax, s in zip(axes[0], sets, strict=True):
        for mode in MODES:
            part = data[(data["set"] == s) & (data["mode"] == mode)]
            if len(part):
                _band(ax, part, MODE_TITLES[mode], MODE_COLORS[mode])
        ax.set_title(titles[s], fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test macro-F1 (mean ± sd over runs)")
    axes[0][-1].legend(loc="lower right", fontsize=8)
    save_figure(fig, path)


def plot_frozen(evals: Sequence[Mapping], titles: Mapping[str, str], path) -> None:
    """Frozen-weight transfer across training, one line per set (Fig. 6)."""
    from hwbench.report import new_figure, save_figure

    data = curves([e for e in evals if e["mode"] == "frozen"])
    fig, ax = new_figure(figsize=(5.5, 3.8))
    colors = ["tab:purple", "tab:orange", "tab:brown", "tab:gray", "tab:olive"]
    for i, (s, title) in enumerate(titles.items()):
        part = data[data["set"] == s] if len(data) else data
        if len(part):
            _band(ax, part, title, colors[i % len(colors)])
    ax.set_xlabel("epoch")
    ax.set_ylabel("test macro-F1, frozen (mean ± sd)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    save_figure(fig, path)


def per_class_after(evals: Sequence[Mapping], set_name: str) -> pd.DataFrame:
    """Mean per-class test accuracy after the first and the last epoch of each run.

    Rows: classes in label order; columns (mode, "first" | "last").
    """
    out = {}
    for mode in MODES:
        runs = [e for e in evals if e["set"] == set_name and e["mode"] == mode]
        if not runs:
            continue
        classes = runs[0]["classes"]
        for which, pick in (("first", 0), ("last", -1)):
            values = np.array(
                [[r["history"][pick][f"test_{CLASS_ACC}{c}"] for c in classes] for r in runs],
                dtype=float,
            )
            with np.errstate(all="ignore"):
                out[(mode, which)] = pd.Series(np.nanmean(values, axis=0), index=classes)
    return pd.DataFrame(out)


def per_class_set(sets: Mapping[str, Mapping], chosen: str | None = None) -> str:
    """The set of the per-class figure: ``chosen``, else the paper's set 2, else the first."""
    if chosen is not None:
        if chosen not in sets:
            raise ValueError(f"per_class_set {chosen!r} is not a set; sets: {list(sets)}")
        return chosen
    return next((n for n, spec in sets.items() if spec.get("paper_set") == 2), next(iter(sets)))


def plot_per_class(evals: Sequence[Mapping], set_name: str, title: str, path) -> None:
    """Per-class accuracy after the first and the last epoch, a panel per mode (Fig. 4)."""
    from hwbench.report import new_figure, save_figure

    table = per_class_after(evals, set_name)
    modes = [m for m in MODES if (m, "first") in table.columns]
    if not modes:
        raise ValueError(f"no runs of set {set_name!r} to plot per-class accuracy for")
    n = len(table)
    fig, axes = new_figure(
        len(modes),
        1,
        figsize=(max(6.0, 0.17 * n + 1.5), 2.1 * len(modes) + 0.6),
        squeeze=False,
        layout="constrained",
    )
    x = np.arange(n)
    for ax, mode in zip(axes[:, 0], modes, strict=True):
        ax.bar(x - 0.2, table[(mode, "first")], width=0.4, color="tab:gray", label="first epoch")
        ax.bar(x + 0.2, table[(mode, "last")], width=0.4, color=MODE_COLORS[mode], label="last")
        ax.set_xticks(x, table.index, fontsize=7)
        ax.set_xlim(-0.7, n - 0.3)
        ax.set_ylim(0, 1.02)
        ax.set_ylabel(f"{MODE_TITLES[mode]}\naccuracy", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(
        f"{title}: per-class test accuracy after the first and the last epoch (mean over runs)",
        fontsize=9,
    )
    save_figure(fig, path)
