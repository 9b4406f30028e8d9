"""Aggregating per-frame errors into the paper's per-action table, and writing it out.

docs/faithfulness.md §3: an action's error is the mean over its frames; the headline number is
the mean of the action errors (not of all frames), so every action counts equally.
"""

import csv
import io
import json
import os

import numpy as np

from mdm.core.atomic import atomic_write
from mdm.core.skeleton import ACTIONS

AVERAGE_ROW = "Average"


def aggregate_by_action(frame_errors, actions):
    """Mean error per action and column, plus an "Average" row of the action means.

    frame_errors: dict column -> `(N,)` per-frame errors; actions: `(N,)` action names.
    Returns dict action -> dict column -> float (mm), actions in `ordered_rows` order.
    """
    actions = np.asarray(actions)
    names, frame_action = np.unique(actions, return_inverse=True)
    frames_per_action = np.bincount(frame_action, minlength=len(names))
    action_means = {}
    for column, errors in frame_errors.items():
        errors = np.asarray(errors, dtype=np.float64)
        if errors.shape != actions.shape:
            raise ValueError(f"column {column!r}: {errors.shape} errors for "
                             f"{actions.shape} action labels")
        sums = np.bincount(frame_action, weights=errors, minlength=len(names))
        action_means[column] = sums / frames_per_action
    index_of = {str(name): index for index, name in enumerate(names)}
    results = {}
    for name in ordered_rows(index_of):
        results[name] = {column: float(means[index_of[name]])
                         for column, means in action_means.items()}
    results[AVERAGE_ROW] = {column: float(np.mean(means))
                            for column, means in action_means.items()}
    return results


def ordered_rows(names):
    """Human3.6M actions in `skeleton.ACTIONS` order, then any other names sorted
    (e.g. MPI-INF-3DHP sequences), then "Average" if present."""
    names = set(names)
    known = [action for action in ACTIONS if action in names]
    others = sorted(names - set(ACTIONS) - {AVERAGE_ROW})
    return known + others + ([AVERAGE_ROW] if AVERAGE_ROW in names else [])


def format_table(results, columns=None, title=None):
    """Fixed-width text table of `results` (action -> column -> mm), 1 decimal.

    Rows: actions present in `skeleton.ACTIONS` order, then the "Average" row under a
    rule. `columns` defaults to those of the first row.
    """
    rows = ordered_rows(results)
    if columns is None:
        columns = list(next(iter(results.values()), {}))
    name_width = max([len("Action")] + [len(row) for row in rows])
    widths = [max(len(column), 7) for column in columns]
    header = "  ".join(["Action".ljust(name_width)]
                       + [column.rjust(width) for column, width in zip(columns, widths)])
    lines = [title] if title else []
    lines += [header, "-" * len(header)]
    for row in rows:
        if row == AVERAGE_ROW:
            lines.append("-" * len(header))
        cells = [_format_mm(results[row].get(column), width)
                 for column, width in zip(columns, widths)]
        lines.append("  ".join([row.ljust(name_width)] + cells))
    return "\n".join(lines) + "\n"


def _format_mm(value, width):
    """One table cell: millimetres with one decimal, or '-' where the value is missing."""
    text = "-" if value is None else f"{value:.1f}"
    return text.rjust(width)


def write_results(path_prefix, results, metadata):
    """Write `<prefix>.json` (metadata and results) and `<prefix>.csv` atomically.

    metadata: what produced the numbers (checkpoint step, protocol, flags). Each file is
    written to a temporary file in the same directory and moved into place with
    os.replace, so a reader never sees half a file. Returns (json_path, csv_path).
    """
    path_prefix = os.fspath(path_prefix)
    json_path, csv_path = path_prefix + ".json", path_prefix + ".csv"
    document = {"metadata": metadata, "results": results}
    _write_atomically(json_path, json.dumps(document, indent=2, default=_json_default) + "\n")
    _write_atomically(csv_path, _results_csv(results))
    return json_path, csv_path


def read_results(json_path):
    """Load what `write_results` wrote: returns (results, metadata)."""
    with open(json_path, encoding="utf-8") as file:
        document = json.load(file)
    return document["results"], document["metadata"]


def _results_csv(results):
    """CSV text: a header `action,<columns>`, one row per action in table order."""
    rows = ordered_rows(results)
    columns = list(next(iter(results.values()), {}))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["action"] + columns)
    for row in rows:
        writer.writerow([row] + [repr(float(results[row][column])) for column in columns])
    return buffer.getvalue()


def _write_atomically(path, text):
    with atomic_write(path) as stream:
        stream.write(text)


def _json_default(value):
    """Let metadata carry numpy scalars and arrays (e.g. a step read from a tensor)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
