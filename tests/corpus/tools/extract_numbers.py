"""Extract all signed integers and decimals from a piece of text."""
import re


def extract_numbers(text):
    """Return every number in the text (ints stay ints, decimals become floats)."""
    pattern = re.compile(r"(-?)(\d+)(?:\.(\d+))?")
    numbers = []
    for match in pattern.finditer(text):
        sign, whole, frac = match.groups()
        if frac:
            value = float(f"{whole}.{frac}")
        else:
            value = int(whole)
        numbers.append(-value if sign else value)
    return numbers
