"""Every study's per-batch input transform equals the former whole-dataset computation.

The studies keep their uint8 images as the stored input and make model input one
batch at a time (hwbench.data.BatchTransform, OneModel's CanvasTransform). These
tests compare each against what the jobs used to compute on the whole set at once
(hwbench.data.to_model_input, OneModel's former assemble() + standardize), on small
sets, batch by batch in a shuffled order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from hwbench.data import batch_transform, input_options, to_model_input
from hwbench.studies.adaptation.spec import BASE_MODEL
from hwbench.studies.onemodel import job as om_job
from hwbench.studies.onemodel import plan as om_plan
from hwbench.studies.onemodel.sensory import (
    CanvasTransform,
    ImageBlock,
    images_to_canvas,
    standardize,
)

REPO = Path(__file__).resolve().parents[1]


def _model_sections() -> list[tuple[str, dict]]:
    """The model section of every study that uses hwbench.data's transform, per preset."""
    out = [("adaptation BASE_MODEL", dict(BASE_MODEL))]
    for preset in ("config.yaml", "config/paper.yaml"):
        cfg = yaml.safe_load((REPO / preset).read_text(encoding="utf-8"))
        for study in ("multiscript", "transfer", "adaptation", "lifelong"):
            model = (cfg.get(study) or {}).get("model")
            if model is not None:
                out.append((f"{preset} {study}", model))
    return out


def _in_batches(transform, x: torch.Tensor, order: torch.Tensor, size: int) -> torch.Tensor:
    """``transform`` over ``x`` in shuffled batches, put back in row order."""
    out = None
    for start in range(0, len(x), size):
        idx = order[start : start + size]
        part = transform(x[idx])
        if out is None:
            out = torch.empty((len(x), *part.shape[1:]))
        out[idx] = part
    return out


@pytest.mark.parametrize(
    "name,model", _model_sections(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_study_transform_per_batch_equals_the_whole_set(name, model):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (23, 28, 28), dtype=torch.uint8, generator=g)
    whole = to_model_input(images, **input_options(model))
    order = torch.randperm(len(images), generator=g)
    per_batch = _in_batches(batch_transform(model), images, order, 5)
    # the same arithmetic per sample: bit for bit, whatever the batch
    assert torch.equal(per_batch, whole), name


# --- OneModel --------------------------------------------------------------------------


def _former_sets(spec, vocab, splits):
    """The former job: every canvas of a set at once, standardised with the train
    canvases' mean and std (what assemble() and standardize did before)."""

    def assemble(split):
        xs = [
            images_to_canvas(
                torch.from_numpy(splits[t.name][split].images), spec.canvas, t.scale_height
            )
            for t in spec.tasks
        ]
        ys = [
            torch.from_numpy(vocab.index(t.name, splits[t.name][split].words)) for t in spec.tasks
        ]
        return torch.cat(xs).div_(255.0), torch.cat(ys)

    data = {s: assemble(s) for s in splits[spec.tasks[0].name]}
    mean, std = float(data["train"][0].mean()), float(data["train"][0].std())
    return {s: (standardize(x, mean, std), y) for s, (x, y) in data.items()}, (mean, std)


def _onemodel_case(canvas):
    """Three tasks: grey 28 x 28 digits, grey wide 12 x 40 'words' scaled to 8 rows,
    colour 3 x 20 x 20 images (CIFAR-like); train and test sets of each."""
    om = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))["onemodel"]
    om.update(canvas=canvas)
    om["tasks"] = [
        {"name": "digits", "dataset": "a", "charset": "latin_digits", "kind": "both"},
        {"name": "words", "dataset": "b", "charset": "arabic_digits", "scale_height": 8},
        {"name": "colour", "dataset": "c", "charset": "kannada_digits"},
    ]
    spec = om_job.spec_from_dict(om_plan.train_params(om, "joint_djb2", 0))
    rng = np.random.default_rng(0)
    shapes = {"digits": (28, 28), "words": (12, 40), "colour": (3, 20, 20)}
    sizes = {"train": 9, "test": 4}
    splits = {}
    for task in spec.tasks:
        words = task.class_words()
        splits[task.name] = {
            s: om_job.TaskData(
                rng.integers(0, 256, (n, *shapes[task.name]), dtype=np.uint8),
                [words[i % len(words)] for i in range(n)],
            )
            for s, n in sizes.items()
        }
    return spec, om_job.build_run_vocabulary(spec, splits), splits


@pytest.mark.parametrize("canvas", [[3, 16, 32], [3, 30, 60]])
def test_onemodel_canvases_per_batch_equal_the_former_assemble_and_standardize(canvas):
    spec, vocab, splits = _onemodel_case(canvas)
    former, (mean, std) = _former_sets(spec, vocab, splits)
    transform, sets = om_job.assemble(spec, vocab, splits)
    assert transform.fit_statistics(sets["train"]["x"], max_values=5000) is transform
    # Streamed float64 moments rounded to float32 vs torch's float32 mean of all
    # canvases: equal up to float32 rounding of the summation, not bit for bit.
    assert transform.mean == pytest.approx(mean, rel=1e-6)
    assert transform.std == pytest.approx(std, rel=1e-6)
    g = torch.Generator().manual_seed(1)
    for s, (x, y) in former.items():
        assert sets[s]["x"].dtype == torch.int64 and torch.equal(sets[s]["y"], y)
        order = torch.randperm(len(x), generator=g)  # batches mix the tasks
        per_batch = _in_batches(transform, sets[s]["x"], order, 5)
        torch.testing.assert_close(per_batch, x, rtol=1e-5, atol=1e-5)
        # with the former statistics, the very same numbers
        transform.mean, transform.std = mean, std
        assert torch.equal(_in_batches(transform, sets[s]["x"], order, 5), x)
        transform.fit_statistics(sets["train"]["x"])


def test_onemodel_transform_names_its_settings_and_refuses_bad_rows():
    spec, vocab, splits = _onemodel_case([3, 16, 32])
    transform, sets = om_job.assemble(spec, vocab, splits)
    transform.fit_statistics(sets["train"]["x"])
    text = repr(transform)
    assert text.startswith("CanvasTransform(canvas=[3, 16, 32], mean=")
    assert "words/train:9x12x40@8#" in text and "colour/test:4x3x20x20@None#" in text
    other = CanvasTransform([3, 16, 32], transform.blocks[:1])
    assert repr(other) != text
    with pytest.raises(ValueError, match="row ids outside"):
        transform(torch.tensor([len(transform.blocks) * 100]))
    with pytest.raises(ValueError, match="2-channel images do not fit a 3-channel canvas"):
        CanvasTransform(
            [3, 16, 32], [ImageBlock("bad/train", torch.zeros(2, 2, 8, 8, dtype=torch.uint8))]
        )
