"""Compute the duration between two clock times, wrapping past midnight."""
from datetime import datetime, timedelta


def time_difference(start, end):
    """Given 'HH:MM' strings (24h or with AM/PM), return 'H hours M minutes'."""
    def parse(value):
        value = value.strip().upper()
        fmt = "%I:%M %p" if value.endswith(("AM", "PM")) else "%H:%M"
        return datetime.strptime(value, fmt)

    t1, t2 = parse(start), parse(end)
    if t2 < t1:
        t2 += timedelta(days=1)
    minutes = int((t2 - t1).total_seconds() // 60)
    return f"{minutes // 60} hours {minutes % 60} minutes"
