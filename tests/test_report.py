"""Report aggregation, paper join, output files and provenance."""

import json
import re

import cv2
import numpy as np
import pandas as pd
import PIL
import PIL.features
import pytest

from hwbench import report


def runs():
    return pd.DataFrame(
        {
            "method": ["Base", "Base", "Base", "New", "New", "Solo"],
            "script": ["Latin"] * 6,
            "seed": [0, 1, 2, 0, 1, 0],
            "acc": [0.90, 0.92, 0.94, 0.95, 0.97, 0.80],
        }
    )


def test_aggregate_mean_sd_n():
    agg = report.aggregate(runs(), ["method", "script"], ["acc"])
    assert list(agg["method"]) == ["Base", "New", "Solo"]
    assert agg["acc_mean"].tolist() == pytest.approx([0.92, 0.96, 0.80])
    assert agg["acc_sd"].iloc[0] == pytest.approx(0.02)  # sample sd of .90 .92 .94
    assert agg["acc_sd"].iloc[1] == pytest.approx(np.std([0.95, 0.97], ddof=1))
    assert np.isnan(agg["acc_sd"].iloc[2])
    assert agg["acc_n"].tolist() == [3, 2, 1]


def test_repeated_seed_and_missing_column_are_errors():
    bad = pd.concat([runs(), runs().iloc[[0]]])
    with pytest.raises(ValueError, match="repeated seeds"):
        report.aggregate(bad, ["method"], ["acc"])
    with pytest.raises(ValueError, match=r"lacks columns \['f1'\]"):
        report.aggregate(runs(), ["method"], ["f1"])


def test_paper_join_diff_and_formatting():
    agg = report.aggregate(runs(), ["method"], ["acc"])
    paper = pd.DataFrame({"method": ["Base", "New"], "paper": [0.95, 0.96]})
    joined = report.join_paper(agg, paper, ["method"], "acc")
    assert joined["acc_paper"].tolist()[:2] == [0.95, 0.96]
    assert joined["acc_diff"].tolist()[:2] == pytest.approx([-0.03, 0.0])
    assert np.isnan(joined["acc_diff"].iloc[2])
    table = report.format_table(joined, ["method"], ["acc"], digits=3)
    assert table.columns.tolist() == ["method", "acc", "acc_paper", "acc_diff"]
    assert table["acc"].tolist() == ["0.920 ± 0.020", "0.960 ± 0.014", "0.800"]
    assert table["acc_diff"].tolist() == ["-0.030", "+0.000", ""]


def test_write_report_and_provenance(tmp_path):
    images = tmp_path / "images.npy"
    np.save(images, np.zeros((2, 28, 28), np.uint8))
    bench = tmp_path / "job.tsv"
    bench.write_text("s\th:m:s\tmax_rss\n12.5\t0:00:12\t100\n")
    prov = report.provenance({"epochs": 3}, [images], [bench], {"run0": "cpu"}, repo=tmp_path)
    assert prov["wall_s"] == {str(bench): 12.5}
    assert prov["datasets"][str(images)] == report.sha256_file(images)
    assert len(prov["datasets"][str(images)]) == 64
    assert prov["git"] == {"commit": None, "dirty": None}  # tmp_path is no checkout
    assert prov["packages"]["torch"] and prov["config"] == {"epochs": 3}
    # the synthetic and preprocessed images depend on these versions
    assert prov["packages"]["pillow"] == PIL.__version__
    assert prov["packages"]["opencv-python-headless"]
    assert prov["packages"]["hwbench-pipeline"], "the distribution's own version"
    assert prov["libraries"] == {
        "freetype": PIL.features.version("freetype2"),
        "opencv": cv2.__version__,
    }
    assert re.fullmatch(r"\d+\.\d+\.\d+", prov["libraries"]["freetype"])

    table = pd.DataFrame({"method": ["Base"], "acc": ["0.92 ± 0.02"]})
    report.write_report(table, tmp_path / "t.csv", prov)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "t.csv"), table)
    assert "0.92 ± 0.02" in (tmp_path / "t.md").read_text()
    page = (tmp_path / "t.html").read_text(encoding="utf-8")
    # the same table, readable in the browser: header cells, then the row's cells
    cells = re.findall(r"<t[hd]>(.*?)</t[hd]>", page)
    assert cells == ["method", "acc", "Base", "0.92 ± 0.02"]
    assert page.startswith("<!DOCTYPE html>") and "<title>t.csv</title>" in page
    assert json.loads((tmp_path / "t.json").read_text())["wall_s"] == {str(bench): 12.5}


def test_git_state_of_this_checkout():
    state = report.git_state(".")
    assert len(state["commit"]) == 40 and isinstance(state["dirty"], bool)


def test_save_figure(tmp_path):
    fig, ax = report.new_figure()
    ax.plot([0, 1], [1, 0])
    report.save_figure(fig, tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"]


def test_append_bench_rows_keeps_earlier_rows(tmp_path):
    from hwbench.report import BENCH_COLUMNS, append_bench_rows

    path = tmp_path / "bench.csv"
    row = {"benchmark": "a", "metric": "x", "value": 1.0, "unit": "s", "kind": "measured"}
    append_bench_rows(path, [row])
    append_bench_rows(path, [row | {"benchmark": "b", "value": 2.5, "kind": "projected"}])
    frame = pd.read_csv(path)
    assert list(frame.columns) == BENCH_COLUMNS
    assert list(frame["benchmark"]) == ["a", "b"] and list(frame["value"]) == [1.0, 2.5]
    assert list(frame["kind"]) == ["measured", "projected"]


def test_append_bench_rows_needs_a_known_kind(tmp_path):
    from hwbench.report import append_bench_rows

    path = tmp_path / "bench.csv"
    row = {"benchmark": "a", "metric": "x", "value": 1.0, "unit": "s"}
    with pytest.raises(ValueError, match=r"row 0 \('x'\) lacks \['kind'\]"):
        append_bench_rows(path, [row])
    with pytest.raises(ValueError, match=r"a/x kind='guessed'.*measured, counted or projected"):
        append_bench_rows(path, [row | {"kind": "guessed"}])
    assert not path.exists()


def test_old_bench_csv_without_kind_is_rewritten_by_the_metric_rule(tmp_path):
    """Rows from before the column: the old projection metrics become `projected`."""
    from hwbench.report import BENCH_COLUMNS, append_bench_rows, read_bench

    path = tmp_path / "bench.csv"
    path.write_text(
        "benchmark,metric,value,unit,note\n"
        "preprocess_files,speedup_wall,5.07,x,n\n"
        "preprocess_files,speedup_cpu_x_workers,5.2,x,n\n"
        "nist_manifest,projected_full,3.1,min,n\n"
        "adaptation,projected_nist_time,400,s,n\n"
        "dry_run,jobs,96,jobs,n\n"
    )
    expected = ["measured", "projected", "projected", "projected", "measured"]
    assert list(read_bench(path)["kind"]) == expected
    row = {"benchmark": "e", "metric": "r", "value": 0.95, "unit": "ratio", "kind": "measured"}
    append_bench_rows(path, [row | {"target": ">= 0.9"}])
    frame = pd.read_csv(path)
    assert list(frame.columns) == BENCH_COLUMNS and len(frame) == 6
    assert list(frame["kind"])[1:4] == ["projected"] * 3 and frame["kind"].iloc[5] == "measured"
    assert frame["target"].iloc[5] == ">= 0.9" and frame["target"].iloc[:5].isna().all()
