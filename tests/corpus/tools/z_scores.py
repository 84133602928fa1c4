"""Standardise values into z-scores and flag those beyond a threshold."""
from statistics import mean, pstdev


def z_scores(values, threshold=2.0):
    """Return z-scores (population stdev) rounded to 2 places and the indices beyond threshold."""
    mu = mean(values)
    sigma = pstdev(values)
    scores = [round((v - mu) / sigma, 2) if sigma else 0.0 for v in values]
    flagged = [i for i, z in enumerate(scores) if abs(z) > threshold]
    return {"scores": scores, "flagged": flagged}
