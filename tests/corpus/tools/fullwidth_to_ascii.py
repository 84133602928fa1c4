"""Convert fullwidth and compatibility characters to plain forms with NFKC."""
import unicodedata


def fullwidth_to_ascii(text):
    """Return the NFKC-normalised text and whether it is now pure ASCII."""
    normalized = unicodedata.normalize("NFKC", text)
    return {"text": normalized, "ascii": normalized.isascii(), "east_asian_widths": sorted({unicodedata.east_asian_width(c) for c in text})}
