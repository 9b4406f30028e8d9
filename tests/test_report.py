"""mdm.evaluate.report: per-action aggregation, the text table and the JSON/CSV files."""

import csv
import json
import os

import numpy as np
import pytest
from numpy.testing import assert_allclose

from mdm.evaluate import report


def small_evaluation():
    """Unequal frame counts, so the mean of action means differs from the frame mean."""
    actions = np.array(["Walking"] * 3 + ["Directions"] * 1 + ["Eating"] * 2)
    frame_errors = {
        "best": np.array([10.0, 20.0, 30.0, 100.0, 40.0, 60.0]),
        "mixture_mean": np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
    }
    return frame_errors, actions


def test_aggregate_by_action_means_and_average_of_actions():
    frame_errors, actions = small_evaluation()
    results = report.aggregate_by_action(frame_errors, actions)
    assert list(results) == ["Directions", "Eating", "Walking", "Average"]
    assert results["Walking"] == pytest.approx({"best": 20.0, "mixture_mean": 2.0})
    assert results["Directions"] == pytest.approx({"best": 100.0, "mixture_mean": 4.0})
    assert results["Eating"] == pytest.approx({"best": 50.0, "mixture_mean": 5.5})
    # docs/faithfulness.md §3: the headline is the mean of the action means (not 260/6 frames).
    assert_allclose(results["Average"]["best"], (20.0 + 100.0 + 50.0) / 3)
    assert_allclose(results["Average"]["mixture_mean"], (2.0 + 4.0 + 5.5) / 3)


def test_aggregate_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="best"):
        report.aggregate_by_action({"best": np.zeros(3)}, np.array(["Walking"] * 4))


def test_unknown_names_follow_the_human36m_actions():
    results = report.aggregate_by_action({"best": np.arange(4.0)},
                                         np.array(["TS2", "Walking", "TS1", "Eating"]))
    assert list(results) == ["Eating", "Walking", "TS1", "TS2", "Average"]


def test_format_table_rows_columns_and_one_decimal():
    frame_errors, actions = small_evaluation()
    results = report.aggregate_by_action(frame_errors, actions)
    table = report.format_table(results, columns=["best"], title="Protocol #1 (mm)")
    lines = table.splitlines()
    assert lines[0] == "Protocol #1 (mm)"
    assert lines[1].split() == ["Action", "best"]
    body = [line.split() for line in lines if line and line[0].isalpha()][2:]
    assert body == [["Directions", "100.0"], ["Eating", "50.0"], ["Walking", "20.0"],
                    ["Average", "56.7"]]
    assert "mixture_mean" not in table
    # Fixed width: every row is as wide as the header.
    assert len({len(line) for line in lines[1:]}) == 1


def test_format_table_columns_stay_aligned_for_any_number():
    """A diverged run's 5.2e13 mm, NaN and infinity must not push cells out of their
    columns: every cell ends where its column's header ends."""
    results = {"Walking": {"best": 5.2e13, "mixture_mean": float("nan")},
               "Eating": {"best": float("inf"), "mixture_mean": -1e300},
               report.AVERAGE_ROW: {"best": 12.25, "mixture_mean": float("-inf")}}
    lines = report.format_table(results).splitlines()
    header = lines[0]
    ends = [header.index(column) + len(column) for column in ("best", "mixture_mean")]
    rows = [line for line in lines[1:] if not set(line) <= {"-"}]
    assert len(rows) == 3
    for line in rows:
        assert len(line) == len(header), lines
        cells = line.split()[1:]
        for cell, end in zip(cells, ends):
            assert line[end - len(cell):end] == cell, lines
            assert end == len(line) or line[end] == " ", lines
    values = {line.split()[0]: line.split()[1:] for line in rows}
    assert values["Average"][0] == "12.2"  # ordinary numbers keep one decimal
    assert [float(cell) for cell in values["Walking"]][0] == pytest.approx(5.2e13, rel=1e-3)
    assert values["Walking"][1] == "nan" and values["Eating"][0] == "inf"


def test_write_results_round_trip(tmp_path):
    frame_errors, actions = small_evaluation()
    results = report.aggregate_by_action(frame_errors, actions)
    metadata = {"step": np.int64(4338038), "protocol": 2, "flags": {"miss_num": 0}}
    json_path, csv_path = report.write_results(tmp_path / "out" / "eval", results, metadata)
    assert json_path.endswith("eval.json") and csv_path.endswith("eval.csv")
    assert sorted(os.listdir(tmp_path / "out")) == ["eval.csv", "eval.json"]  # no temp left

    with open(json_path, encoding="utf-8") as file:
        document = json.load(file)
    assert document["metadata"] == {"step": 4338038, "protocol": 2, "flags": {"miss_num": 0}}
    assert document["results"] == results
    assert report.read_results(json_path) == (results, document["metadata"])

    with open(csv_path, newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["action", "best", "mixture_mean"]
    assert [row[0] for row in rows[1:]] == list(results)
    for row in rows[1:]:
        assert [float(value) for value in row[1:]] == [results[row[0]]["best"],
                                                       results[row[0]]["mixture_mean"]]


def test_write_results_replaces_an_existing_file(tmp_path):
    prefix = tmp_path / "eval"
    report.write_results(prefix, {"Average": {"best": 1.0}}, {"step": 1})
    report.write_results(prefix, {"Average": {"best": 2.0}}, {"step": 2})
    results, metadata = report.read_results(str(prefix) + ".json")
    assert results == {"Average": {"best": 2.0}} and metadata == {"step": 2}
