"""Group words that are anagrams of each other."""
from collections import defaultdict


def group_anagrams(words):
    """Return groups of anagrams (each sorted), groups ordered by size then first word."""
    groups = defaultdict(list)
    for word in words:
        groups["".join(sorted(word.lower()))].append(word)
    result = [sorted(group) for group in groups.values()]
    result.sort(key=lambda g: (-len(g), g[0]))
    return result
