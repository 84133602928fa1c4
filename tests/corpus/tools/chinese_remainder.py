"""Solve a system x = r_i (mod m_i) with the Chinese remainder theorem."""
from functools import reduce


def chinese_remainder(remainders, moduli):
    """Return the smallest non-negative x satisfying all congruences (moduli pairwise coprime)."""
    product = reduce(lambda a, b: a * b, moduli)
    total = 0
    for r, m in zip(remainders, moduli):
        partial = product // m
        inverse = pow(partial, -1, m)
        total += r * partial * inverse
    return total % product
