"""Compute Pearson correlation and the least-squares line for paired data."""
import statistics


def correlation_report(xs, ys):
    """Return r, slope and intercept rounded to 4 decimals, plus a verbal strength."""
    r = statistics.correlation(xs, ys)
    fit = statistics.linear_regression(xs, ys)
    strength = "strong" if abs(r) >= 0.7 else "moderate" if abs(r) >= 0.4 else "weak"
    return {
        "r": round(r, 4),
        "slope": round(fit.slope, 4),
        "intercept": round(fit.intercept, 4),
        "strength": strength,
    }
