"""Round numbers the school way (halves away from zero) using decimal."""
from decimal import Decimal, ROUND_HALF_UP


def round_half_up(values, places=2):
    """Round each value (given as a string or number) to `places` decimals, half up."""
    exponent = Decimal(1).scaleb(-places)
    results = []
    for value in values:
        rounded = Decimal(str(value)).quantize(exponent, rounding=ROUND_HALF_UP)
        results.append(str(rounded))
    return results
