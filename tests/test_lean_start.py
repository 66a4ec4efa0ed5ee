"""Issue #28 item 4: a training job starts without scikit-learn, pandas or matplotlib,
and what the engine wrote with pandas it writes byte for byte the same without it."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from hwbench.engine import TrainConfig, fit
from hwbench.engine.results import write_history_csv
from tests.test_engine import make_model, toy_data

ROOT = Path(__file__).resolve().parents[1]


def test_engine_and_data_import_without_sklearn_pandas_matplotlib():
    code = (
        "import json, sys; import hwbench.engine, hwbench.data; "
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('sklearn', 'pandas', 'matplotlib'))))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
        check=True,
    )  # fmt: skip
    assert json.loads(out.stdout) == []


HISTORIES = {
    "plain": [
        {"epoch": 1, "lr": 0.001, "batch_size": 32, "train_loss": 1.2345678901234567},
        {"epoch": 2, "lr": 1e-05, "batch_size": 64, "train_loss": 0.1 + 0.2},
    ],
    "ragged": [  # a column missing in one row; an int column that pandas makes float
        {"epoch": 1, "train_loss": 0.5, "count": 3},
        {"epoch": 2, "train_loss": 0.25, "val_acc": 0.75},
    ],
    "odd values": [
        {"epoch": 1, "x": math.nan, "flag": True, "name": "a,b", "big": 1e16, "neg": -0.0},
        {
            "epoch": 2,
            "x": math.inf,
            "flag": False,
            "name": 'q"uote',
            "big": 123456789.5,
            "neg": 3,
        },  # fmt: skip
    ],
    "none": [{"epoch": 1, "v": None, "w": 1}, {"epoch": 2, "v": 2.5, "w": None}],
}


@pytest.mark.parametrize("name", list(HISTORIES))
def test_metrics_csv_has_the_bytes_pandas_wrote(tmp_path, name):
    history = HISTORIES[name]
    write_history_csv(tmp_path / "ours.csv", history)
    pd.DataFrame(history).to_csv(tmp_path / "pandas.csv", index=False)
    assert (tmp_path / "ours.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()


def test_a_fit_writes_metrics_csv_as_pandas_did(tmp_path):
    result = fit(make_model(), toy_data(), TrainConfig(epochs=2, seed=1, amp=False), tmp_path,
                 eval_sets={"val": toy_data(60, seed=1)}, progress=False)  # fmt: skip
    expected = tmp_path / "pandas.csv"
    pd.DataFrame(result.history).to_csv(expected, index=False)
    assert (tmp_path / "metrics.csv").read_bytes() == expected.read_bytes()
