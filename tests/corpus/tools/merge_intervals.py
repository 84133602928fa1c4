"""Merge overlapping [start, end] intervals."""


def merge_intervals(intervals):
    """Return the sorted, merged list of intervals (touching intervals are merged)."""
    merged = []
    for start, end in sorted(intervals, key=lambda iv: iv[0]):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged
