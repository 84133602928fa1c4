"""Render rows of (name, quantity, price) as an aligned plain-text table."""


def format_table(rows):
    """Return the table as a list of lines with a header and a total row."""
    header = "{:<10} {:>5} {:>10}".format("Item", "Qty", "Price")
    lines = [header, "-" * len(header)]
    total = 0.0
    for name, qty, price in rows:
        lines.append("{:<10} {:>5d} {:>10.2f}".format(name, qty, price))
        total += qty * price
    lines.append("{:<10} {:>5} {:>10.2f}".format("TOTAL", "", total))
    return lines
