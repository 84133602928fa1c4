"""Hex-encode a string's UTF-8 bytes and decode hex back to text."""


def hex_round_trip(text=None, hex_string=None):
    """Encode text to hex, or decode hex_string (spaces allowed) to text."""
    if text is not None:
        return text.encode("utf-8").hex()
    return bytes.fromhex(hex_string).decode("utf-8")
