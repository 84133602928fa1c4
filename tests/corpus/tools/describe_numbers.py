"""Summarise a list of numbers: mean, median, mode, standard deviation, range."""
import statistics


def describe_numbers(values):
    """Return descriptive statistics rounded to 3 decimals."""
    return {
        "mean": round(statistics.mean(values), 3),
        "median": statistics.median(values),
        "mode": statistics.mode(values),
        "stdev": round(statistics.stdev(values), 3),
        "pstdev": round(statistics.pstdev(values), 3),
        "range": max(values) - min(values),
    }
