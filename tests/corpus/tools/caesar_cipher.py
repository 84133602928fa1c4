"""Encrypt or decrypt text with a Caesar shift, preserving case and punctuation."""
import string


def caesar_cipher(text, shift, decrypt=False):
    """Shift letters by `shift` (negative when decrypting) using str.maketrans."""
    if decrypt:
        shift = -shift
    shift %= 26
    lower, upper = string.ascii_lowercase, string.ascii_uppercase
    table = str.maketrans(lower + upper, lower[shift:] + lower[:shift] + upper[shift:] + upper[:shift])
    return text.translate(table)
