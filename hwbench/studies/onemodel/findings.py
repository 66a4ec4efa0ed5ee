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


def _mean_over_tasks(runs: pd.DataFrame, run: str, metric: str, tasks: Sequence[str]) -> Sample:
    """Per seed: the mean of ``metric`` over ``tasks`` (seeds lacking one are left out)."""
    rows = runs[(runs["run"] == run) & (runs["metric"] == metric) & runs["task"].isin(tasks)]
    per_seed = rows.pivot_table(index="seed", columns="task", values="value", aggfunc="first")
    per_seed = per_seed.reindex(columns=list(tasks)).dropna()
    return sample(f"{run} {metric} (mean of {len(tasks)} tasks)", per_seed.mean(axis=1), 1)


def _paper_accuracy() -> str:
    rows = [(k, v["accuracy"]) for k, v in PAPER_TABLE3.items() if "accuracy" in v]
    return "joint/single accuracy: " + ", ".join(f"{k} {j}/{s}" for k, (j, s, _) in rows)


def findings(records: Sequence[Mapping], config: Mapping) -> list[Finding]:
    """The claims from the runs' eval records and the onemodel config section (tasks,
    discriminator, phoc_levels, prime)."""
    main = config["discriminator"]
    runs = long_results(records, main)
    tasks = [t.name for t in parse_tasks(config["tasks"])]
    without, with_main = collisions(records, config)
    out = [
        Finding(
            STUDY,
            "Without a sensory discriminator, labels of different tasks collide (the same "
            f"word in two tasks); with the discriminator ({main}) fewer do.",
            "onemodel.md, section 3.2 and section 5, Fig. 5",
            "Fig. 5: 'pay', 'way', 'say' collide across speech, vision and language "
            "without hashing; DJB2 (mod 1000003) separates all nine",
            (paired_greater(without, with_main),),
            note="Counted from the class words each joint run recorded.",
        )
    ]
    none_run = f"{JOINT}_{NONE}"
    out.append(
        Finding(
            STUDY,
            f"Colliding labels confuse the joint model: with {main} it tells the tasks apart "
            "(accuracy among every task's classes) better than with no discriminator.",
            "onemodel.md, section 3.2 ('leading to confusion ... poor performance')",
            "no number: stated, not measured in the paper",
            (
                greater(
                    _mean_over_tasks(runs, JOINT, "accuracy_all_tasks", tasks),
                    _mean_over_tasks(runs, none_run, "accuracy_all_tasks", tasks),
                ),
            ),
            note=f"Needs the {none_run} runs (onemodel.compare_discriminators: [none]).",
        )
    )
    out.append(
        Finding(
            STUDY,
            "The joint OneModel is slightly less accurate than one model per task.",
            "onemodel.md, section 6, Table 3",
            _paper_accuracy(),
            (
                greater(
                    _mean_over_tasks(runs, SINGLE, "accuracy", tasks),
                    _mean_over_tasks(runs, JOINT, "accuracy", tasks),
                ),
            ),
        )
    )
    return out
