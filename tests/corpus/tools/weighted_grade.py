"""Compute a weighted average and letter grade, plus the harmonic and geometric means."""
import statistics


def weighted_grade(scores, weights):
    """Return the weighted mean, its letter grade and other means of the raw scores."""
    weighted = sum(s * w for s, w in zip(scores, weights)) / sum(weights)
    cutoffs = [(90, "A"), (80, "B"), (70, "C"), (60, "D")]
    letter = next((grade for cut, grade in cutoffs if weighted >= cut), "F")
    return {
        "weighted": round(weighted, 2),
        "letter": letter,
        "harmonic": round(statistics.harmonic_mean(scores), 2),
        "geometric": round(statistics.geometric_mean(scores), 2),
    }
