"""Compute quartiles, IQR and outliers with statistics.quantiles."""
from statistics import quantiles


def quartiles(values, method="exclusive"):
    """Return Q1, Q2, Q3, the IQR and values outside 1.5*IQR fences."""
    q1, q2, q3 = quantiles(values, n=4, method=method)
    iqr = q3 - q1
    low, high = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    return {
        "q1": q1, "q2": q2, "q3": q3, "iqr": iqr,
        "outliers": [v for v in values if v < low or v > high],
    }
