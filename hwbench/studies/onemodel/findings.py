"""The OneModel paper's findings (sections 3.2, 4 and 6, Table 3), tested on this run's
seeds. Values come from the runs' eval.json records (:func:`report.long_results`,
and the class words each joint run recorded); verdicts: :mod:`hwbench.findings`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from hwbench.findings import Finding, Sample, greater, paired_greater, sample
from hwbench.studies.onemodel.report import PAPER_TABLE3, collision_table, long_results
from hwbench.studies.onemodel.spec import JOINT, SINGLE, parse_tasks

STUDY = "onemodel"
NONE = "none"


def collisions(records: Sequence[Mapping], config: Mapping) -> tuple[Sample, Sample]:
    """Per seed of the main joint runs: the colliding label strings of their class
    words without a discriminator and with the configured one."""
    tasks = parse_tasks(config["tasks"])
    main = config["discriminator"]
    counts: dict[str, dict[int, float]] = {NONE: {}, main: {}}
    for rec in records:
        if rec["mode"] != JOINT or rec["discriminator"] != main:
            continue
        table = collision_table(
            tasks,
            rec["vocabulary"]["words"],
            config["phoc_levels"],
            config["prime"],
            discriminators=(NONE, main),
        ).drop_duplicates("discriminator")  # the first row of each: the configured prime
        by = table.set_index("discriminator")["colliding_strings"]
        counts[NONE][int(rec["seed"])] = float(by[NONE])
        counts[main][int(rec["seed"])] = float(by[main])
    return (
        sample("colliding labels without a discriminator", counts[NONE], 1),
        sample(f"colliding labels with {main}", counts[main], 1),
    )


def _task_sample(
    runs: pd.DataFrame, run: str, task: str, metric: str, n_test: int | None
) -> Sample:
    """Per seed: one task's ``metric`` (in percent) of the ``run`` kind."""
    rows = runs[(runs["run"] == run) & (runs["task"] == task) & (runs["metric"] == metric)]
    s = sample(f"{run} {task} {metric}", rows.set_index("seed")["value"], 1)
    return Sample(s.name, s.values, s.digits, n_test, 100.0)


def test_sizes(records: Sequence[Mapping]) -> dict[str, int]:
    """Task -> its test images, from the single-task runs (the joint runs record the
    test images of all their tasks together)."""
    sizes: dict[str, int] = {}
    for rec in records:
        n = rec.get("n", {}).get("test")
        if rec["mode"] == SINGLE and n and len(rec.get("tasks", [])) == 1:
            task = rec["tasks"][0]
            sizes[task] = min(int(n), sizes.get(task, int(n)))
    return sizes


def task_metrics(runs: pd.DataFrame, task: str) -> list[str]:
    """The metric a task is scored by: accuracy where its runs have one, else the
    word-spotting mAPs (QbS, QbE), as in the paper's Table 3."""
    have = set(runs.loc[runs["task"] == task, "metric"])
    return ["accuracy"] if "accuracy" in have else [m for m in ("qbs_map", "qbe_map") if m in have]


def joint_vs_single(
    runs: pd.DataFrame, tasks: Sequence, sizes: Mapping[str, int], joint_higher: bool
):
    """Per task and its metric: single > joint (or joint > single)."""
    out = []
    for task in tasks:
        for metric in task_metrics(runs, task.name) or ["accuracy"]:
            joint = _task_sample(runs, JOINT, task.name, metric, sizes.get(task.name))
            single = _task_sample(runs, SINGLE, task.name, metric, sizes.get(task.name))
            out.append(greater(joint, single) if joint_higher else greater(single, joint))
    return tuple(out)


def _paper_table3(rows: Sequence[str]) -> str:
    cells = []
    for row in rows:
        for metric, (joint, single, _) in PAPER_TABLE3[row].items():
            cells.append(f"{row} {metric} {joint}/{single}")
    return "joint/single: " + ", ".join(cells)


def _mean_over_tasks(runs: pd.DataFrame, run: str, metric: str, tasks: Sequence[str]) -> Sample:
    """Per seed: the mean of ``metric`` over ``tasks`` (seeds lacking one are left out)."""
    rows = runs[(runs["run"] == run) & (runs["metric"] == metric) & runs["task"].isin(tasks)]
    per_seed = rows.pivot_table(index="seed", columns="task", values="value", aggfunc="first")
    per_seed = per_seed.reindex(columns=list(tasks)).dropna()
    return sample(f"{run} {metric} (mean of {len(tasks)} tasks)", per_seed.mean(axis=1), 1)


COLLIDE = (
    "Clearly, it is possible that two different tasks and / or domains to use the same "
    "labels, leading to confusion during learning and will therefore result in poor "
    "performance."
)
SLIGHTLY_LOWER = (
    "The per-task performance of the OneModel is slightly lower than the best models we "
    "trained for every task"
)
IAM_EXCEPTION = (
    "The English handwriting words-spotting is an exception, however, as the performance "
    "of the OneModel trained on all the tasks is slightly higher than the single model."
)
IAM = "IAM"


def findings(records: Sequence[Mapping], config: Mapping) -> list[Finding]:
    """The claims from the runs' eval records and the onemodel config section (tasks,
    discriminator, phoc_levels, prime)."""
    main = config["discriminator"]
    runs = long_results(records, main)
    parsed = parse_tasks(config["tasks"])
    tasks = [t.name for t in parsed]
    sizes = test_sizes(records)
    without, with_main = collisions(records, config)
    out = [
        Finding(
            STUDY,
            "Without a sensory discriminator, labels of different tasks collide (the same "
            f"word in two tasks); with the discriminator ({main}) fewer do.",
            f'onemodel.md, section 3.2: "{COLLIDE}"',
            "Fig. 5: 'pay', 'way', 'say' collide across speech, vision and language "
            "without hashing; DJB2 (mod 1000003) separates all nine",
            (paired_greater(without, with_main),),
            note="Counted from the class words each joint run recorded.",
            by_construction="a count of the configured class words, the same on every seed",
        )
    ]
    none_run = f"{JOINT}_{NONE}"
    out.append(
        Finding(
            STUDY,
            f"Colliding labels confuse the joint model: with {main} it tells the tasks apart "
            "(accuracy among every task's classes) better than with no discriminator.",
            f'onemodel.md, section 3.2: "{COLLIDE}"',
            "no number: stated, not measured in the paper",
            (
                greater(
                    _mean_over_tasks(runs, JOINT, "accuracy_all_tasks", tasks),
                    _mean_over_tasks(runs, none_run, "accuracy_all_tasks", tasks),
                ),
            ),
            note=f"Needs the {none_run} runs (onemodel.compare_discriminators: [none]).",
            by_construction="without a discriminator a colliding class's images score 0 "
            "in accuracy_all_tasks, whatever the model learns",
        )
    )
    others = [t for t in parsed if t.paper_row != IAM]
    rows = [r for r in dict.fromkeys(t.paper_row for t in others) if r] or [
        r for r in PAPER_TABLE3 if r != IAM
    ]
    out.append(
        Finding(
            STUDY,
            "The joint OneModel is slightly less accurate than one model per task, on every "
            "task but English word spotting (accuracy, or QbS and QbE mAP).",
            f'onemodel.md, section 6: "{SLIGHTLY_LOWER}"',
            _paper_table3(rows),
            joint_vs_single(runs, others, sizes, joint_higher=False),
        )
    )
    iam = [t for t in parsed if t.paper_row == IAM]
    out.append(
        Finding(
            STUDY,
            "English word spotting (IAM) is the exception: there the joint OneModel is "
            "slightly better than the single-task model (QbS and QbE mAP).",
            f'onemodel.md, section 6: "{IAM_EXCEPTION}"',
            _paper_table3([IAM]),
            joint_vs_single(runs, iam, sizes, joint_higher=True),
            note="" if iam else "No configured task stands for IAM (paper_row: IAM).",
        )
    )
    return out
