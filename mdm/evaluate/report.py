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
    cells = {row: [_format_mm(results[row].get(column)) for column in columns] for row in rows}
    # Widths come from the cells, so any number (a diverged run's 5e13, nan, inf) stays in
    # its column; 7 keeps the usual "   45.2" layout for short column names.
    widths = [max([len(column), 7] + [len(cells[row][index]) for row in rows])
              for index, column in enumerate(columns)]
    header = "  ".join(["Action".ljust(name_width)]
                       + [column.rjust(width) for column, width in zip(columns, widths)])
    lines = [title] if title else []
    lines += [header, "-" * len(header)]
    for row in rows:
        if row == AVERAGE_ROW:
            lines.append("-" * len(header))
        lines.append("  ".join([row.ljust(name_width)]
                               + [text.rjust(width) for text, width in zip(cells[row], widths)]))
    return "\n".join(lines) + "\n"


# Above 1e7 mm (10 km, no pose) one decimal would print up to 300 digits: use exponents.
_FIXED_POINT_LIMIT_MM = 1e7


def _format_mm(value):
    """One table cell: millimetres with one decimal (an exponent for absurd values, as a
    diverged model gives), or '-' where the value is missing."""
    if value is None:
        return "-"
    return f"{value:.1f}" if abs(value) < _FIXED_POINT_LIMIT_MM else f"{value:.3g}"


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
