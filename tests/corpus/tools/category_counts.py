"""Count characters by Unicode major category (letters, numbers, punctuation, ...)."""
import unicodedata
from collections import Counter


def category_counts(text):
    """Return counts keyed by the first letter of unicodedata.category and numeric values found."""
    counts = Counter(unicodedata.category(ch)[0] for ch in text)
    numerics = [unicodedata.numeric(ch) for ch in text if unicodedata.category(ch) in ("Nd", "No", "Nl")]
    return {"counts": dict(sorted(counts.items())), "numeric_values": numerics}
