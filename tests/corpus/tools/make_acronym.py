"""Build an acronym from a phrase, skipping minor words."""


def make_acronym(phrase, skip_words=None):
    """Return the upper-case initials of the significant words in the phrase."""
    if skip_words is None:
        skip_words = ["of", "and", "the", "for", "a", "an", "in", "on"]
    skip = {word.lower() for word in skip_words}
    words = phrase.replace("-", " ").split()
    letters = [word[0].upper() for word in words if word.lower() not in skip and word[0].isalpha()]
    return "".join(letters)
