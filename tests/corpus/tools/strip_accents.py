"""Remove diacritics from text using Unicode NFKD decomposition."""
import unicodedata


def strip_accents(text):
    """Return the text with combining marks removed (e.g. 'Crème brûlée' -> 'Creme brulee')."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))
