"""Compute the GCD and LCM of a list of integers."""
import math
from functools import reduce


def gcd_lcm_list(numbers):
    """Return {'gcd': ..., 'lcm': ...} for the list of positive integers."""
    g = reduce(math.gcd, numbers)
    l = reduce(lambda a, b: a * b // math.gcd(a, b), numbers)
    return {"gcd": g, "lcm": l}
