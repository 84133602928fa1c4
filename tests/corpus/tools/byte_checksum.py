"""Compute simple checksums over the UTF-8 bytes of a message."""
from functools import reduce
from operator import xor


def byte_checksum(message, encoding="utf-8"):
    """Return the byte sum mod 256, XOR of all bytes, and the bytes as a list."""
    data = message.encode(encoding)
    return {
        "sum8": sum(data) % 256,
        "xor": reduce(xor, data, 0),
        "bytes": list(data),
        "bytearray_upper": bytearray(data).upper().decode(encoding),
    }
