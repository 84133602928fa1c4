"""Decode a list of byte values as Windows-1252 and compare with Latin-1."""


def decode_cp1252(byte_values):
    """Return the cp1252 and latin-1 decodings of the bytes (undecodable bytes replaced)."""
    data = bytes(byte_values)
    return {
        "cp1252": data.decode("cp1252", errors="replace"),
        "latin1": data.decode("latin-1"),
        "ascii": data.decode("ascii", errors="replace"),
    }
