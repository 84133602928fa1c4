"""Sort words by length, breaking ties alphabetically, optionally longest first."""


def sort_by_length(words, longest_first=False):
    """Return the words ordered by length then alphabetically."""
    if longest_first:
        return sorted(words, key=lambda w: (-len(w), w.lower()))
    return sorted(words, key=lambda w: (len(w), w.lower()))
