"""Measure how many bytes strings take in different encodings."""


def utf8_byte_length(text):
    """Return byte lengths in UTF-8, UTF-16 (LE, no BOM) and UTF-32, and the UTF-8 hex dump."""
    data = text.encode("utf-8")
    return {
        "chars": len(text),
        "utf8": len(data),
        "utf16": len(text.encode("utf-16-le")),
        "utf32": len(text.encode("utf-32-le")),
        "hex": data.hex(" "),
    }
