"""Produce a short report using old-style %-formatting."""


def percent_format_report(name, score, total):
    """Return lines like 'Alice     : 17/20 (85.00%)' using the % operator."""
    ratio = 100.0 * score / total
    line = "%-10s: %d/%d (%.2f%%)" % (name, score, total, ratio)
    status = "%s %s" % (name, "passed" if ratio >= 50 else "failed")
    return [line, status, "%5.1f|%-6s|%+d" % (ratio, name[:6], score - total)]
