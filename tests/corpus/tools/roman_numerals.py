"""Convert between integers and Roman numerals."""

VALUES = [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
          (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]


def roman_numerals(value):
    """If value is an int return its numeral; if a numeral string return its int."""
    if isinstance(value, int):
        out = []
        for amount, symbol in VALUES:
            count, value = divmod(value, amount)
            out.append(symbol * count)
        return "".join(out)
    single = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
    total = 0
    for current, following in zip(value, value[1:] + " "):
        if single.get(following, 0) > single[current]:
            total -= single[current]
        else:
            total += single[current]
    return total
