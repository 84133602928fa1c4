"""List the Unicode names and categories of the characters in a string."""
import unicodedata


def char_names(text):
    """Return [[char, code point 'U+XXXX', name, category], ...] for each character."""
    rows = []
    for ch in text:
        rows.append([ch, f"U+{ord(ch):04X}", unicodedata.name(ch, "UNKNOWN"), unicodedata.category(ch)])
    return rows
