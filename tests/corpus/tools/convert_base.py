"""Convert a number written in one base to another base (2-36)."""
import string

DIGITS = string.digits + string.ascii_uppercase


def convert_base(number, from_base, to_base):
    """Return the string form of `number` (a string in from_base) written in to_base."""
    value = int(number, from_base)
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    value = abs(value)
    out = []
    while value:
        value, digit = divmod(value, to_base)
        out.append(DIGITS[digit])
    return sign + "".join(reversed(out))
