"""Parse log lines like '2024-01-05 12:00:01 [ERROR] disk full' and tally levels."""
import re
from collections import defaultdict


def parse_log_lines(lines):
    """Return a dict mapping each log level to the list of its messages."""
    line_re = re.compile(r"^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) \[(\w+)\] (.+)$")
    by_level = defaultdict(list)
    for line in lines:
        match = line_re.match(line.strip())
        if not match:
            continue
        date, time, level, message = match.groups()
        by_level[level.upper()].append(message)
    return dict(by_level)
