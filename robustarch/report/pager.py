"""Long tables on the page: above `PAGE_ROWS` rows a table travels as inline JSON (its display
strings, column by column) and a few lines of the page's script draw it a page at a time, sortable
over every row. The page stays self-contained; every row and full-precision value is in the export
(`--format csv/json`, `robustarch export`).

Why: 15 625 rows × 26 cells of HTML are ~20 MB and seconds of layout; as JSON of the columns that
hold a value they are ~1–2 MB, and the browser lays out 100 rows.
"""

from __future__ import annotations

import json

import pandas as pd

PAGE_ROWS = 200  # up to this many rows a table is plain HTML, as it always was


def digits(column) -> int:
    """Decimals shown: widths are mean channels, fractional (26.667) where stages differ: one decimal."""
    return 1 if str(column).endswith("width") else 3


def is_long(table) -> bool:
    return table is not None and len(table) > PAGE_ROWS


def table_json(
    table: pd.DataFrame,
    fmt,
    columns: list[tuple[str, str]] | None = None,
    text_cols=(),
    *,
    row_cls: list[str] | None = None,
    trials: list | None = None,
    cells: dict[str, list[str]] | None = None,
) -> str:
    """The JSON a pager draws: labels, which columns are text, each column's display strings (columns
    without any value left out), optional row classes and trial numbers (linked highlighting), and
    `cells` overriding the strings of some columns. Safe inside <script>: no `<` survives."""
    columns = columns or [(c, c) for c in table.columns]
    cells = cells or {}
    keep = [(c, label) for c, label in columns if c in cells or (c in table and table[c].notna().any())]
    data = [cells[c] if c in cells else [fmt(v, digits(c)) for v in table[c].tolist()] for c, _ in keep]
    doc = {
        "cols": [label for _, label in keep],
        "text": [c in text_cols for c, _ in keep],
        "data": data,
        "cls": row_cls,
        "trial": trials,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def trial_rows(trials: pd.DataFrame, fmt, columns, text_cols) -> str:
    """The trial table as `table_json`: the sanity column as its text, flagged and front rows marked,
    each analysed row tied to its marks in the plots."""
    sanity = []
    for ok, flagged, invalid, warnings in zip(
        trials["sanity_ok"], trials["flagged"], trials["sanity_invalid"], trials["sanity_warnings"]
    ):
        text = "–" if ok is None or ok != ok else ("FLAGGED: " + str(invalid) if flagged else ("ok" if ok else ""))
        sanity.append(text + (f" warning: {warnings}" if isinstance(warnings, str) and warnings else ""))
    cls = [("flagged" if f else "") + (" front" if p else "") for f, p in zip(trials["flagged"], trials["pareto"])]
    tied = [int(t) if r == r else None for t, r in zip(trials["trial"], trials["robust_accuracy"])]
    return table_json(trials, fmt, columns, text_cols, row_cls=cls, trials=tied, cells={"sanity": sanity})
