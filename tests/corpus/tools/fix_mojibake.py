"""Repair text that was UTF-8 but got decoded as Latin-1/cp1252 (mojibake)."""


def fix_mojibake(text, wrong_encoding="latin-1"):
    """Re-encode with the wrong codec and decode as UTF-8; return the original if that fails."""
    try:
        return text.encode(wrong_encoding).decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text
