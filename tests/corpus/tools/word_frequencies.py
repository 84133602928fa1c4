"""Count word frequencies in a text, ignoring case and punctuation."""
import string
from collections import Counter


def word_frequencies(text, top_n=3):
    """Return the top_n most common words as [word, count] pairs (ties alphabetical)."""
    table = str.maketrans("", "", string.punctuation)
    words = text.lower().translate(table).split()
    counts = Counter(words)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [[word, count] for word, count in ranked[:top_n]]
