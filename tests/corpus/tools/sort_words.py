"""Sort the words of a BIG-Bench Hard word_sorting question alphabetically."""


def sort_words(question):
    """Take 'Sort the following words alphabetically: List: ...' and return the sorted words."""
    if "List:" in question:
        question = question.split("List:", 1)[1]
    words = question.split()
    return " ".join(sorted(words, key=str.lower))
