"""Tables that stay readable in a narrow terminal, or in a pipe, where rich assumes 80 columns.

Left to itself, rich shrinks every column that may wrap until the table fits, down to a few
characters each, so names and numbers break mid-word into columns nobody can read. A table's key
columns are its ``no_wrap`` ones (a tool's name and version, a task's name): :func:`fitted`
never cuts them, and gives every other column at least its longest word, or, when that is more
than the console holds, prints each row as a block of ``column  value`` lines.
"""

from __future__ import annotations

from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.measure import Measurement
from rich.table import Column, Table

_UNBOUNDED = 1_000_000  # a width to measure a table at its natural size


def fitted(table: Table, console: Console) -> RenderableType:
    """``table`` laid out for ``console``'s width.

    As it is when it fits; else with column widths that cut no key and break no word (the
    columns of ``table`` are given those widths); else one block of lines per row.
    """
    wide = console.options.update_width(_UNBOUNDED)
    natural = Measurement.get(console, wide, table).maximum
    if natural <= console.width:
        return table
    spans = [_span(console, wide, column) for column in table.columns]
    room = console.width - (natural - sum(span.maximum for span in spans))
    if sum(span.minimum for span in spans) > room:
        return blocks(table)
    for column, width in zip(table.columns, _shared_out(spans, room), strict=True):
        column.width = width
    return table


def blocks(table: Table) -> RenderableType:
    """``table`` as one block per row: a line per column, its header then its value; the key
    columns' lines in bold."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column()
    rows = zip(*(column.cells for column in table.columns), strict=True)
    for number, row in enumerate(rows):
        if number:
            grid.add_row()
        for column, cell in zip(table.columns, row, strict=True):
            grid.add_row(column.header, cell, style="bold" if column.no_wrap else None)
    return Group(table.title, grid) if table.title else grid


def _span(console: Console, options: ConsoleOptions, column: Column) -> Measurement:
    """The column's content width: at least its longest word (its longest line if it is a key
    column), at most its longest line."""
    spans = [Measurement.get(console, options, cell) for cell in (column.header, *column.cells)]
    widest = max(span.maximum for span in spans)
    return Measurement(widest if column.no_wrap else max(s.minimum for s in spans), widest)


def _shared_out(spans: list[Measurement], room: int) -> list[int]:
    """Widths from each span's minimum up, within ``room``: the columns that need least more
    are given all they need, the rest share what is left evenly."""
    widths = [span.minimum for span in spans]
    spare = room - sum(widths)
    needy = sorted(range(len(spans)), key=lambda i: spans[i].maximum - spans[i].minimum)
    for done, index in enumerate(needy):
        extra = min(spans[index].maximum - widths[index], spare // (len(needy) - done))
        widths[index] += extra
        spare -= extra
    return widths
