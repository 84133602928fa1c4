"""Sort words using a custom alphabet order (alien dictionary style)."""


def sort_by_custom_order(words, alphabet):
    """Return words sorted by the given alphabet; unknown letters go last."""
    order = {ch: index for index, ch in enumerate(alphabet)}
    big = len(alphabet)
    return sorted(words, key=lambda word: [order.get(ch, big) for ch in word])
