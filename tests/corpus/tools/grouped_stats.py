"""Group records by a category and compute count, mean and median per group."""
from collections import defaultdict
from statistics import fmean, median


def grouped_stats(records, group_key, value_key):
    """records: list of dicts; return {group: {'count', 'mean', 'median'}} sorted by group."""
    groups = defaultdict(list)
    for record in records:
        groups[record[group_key]].append(record[value_key])
    return {
        name: {"count": len(vals), "mean": round(fmean(vals), 2), "median": median(vals)}
        for name, vals in sorted(groups.items())
    }
