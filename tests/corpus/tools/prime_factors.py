"""Factorise an integer and list the primes below a bound."""
import math


def is_prime(n):
    """Trial-division primality test."""
    if n < 2:
        return False
    return all(n % d for d in range(2, math.isqrt(n) + 1))


def prime_factors(n, bound=20):
    """Return the prime factorisation of n as {prime: exponent} and the primes below bound."""
    factors = {}
    d = 2
    while d * d <= n:
        while n % d == 0:
            factors[str(d)] = factors.get(str(d), 0) + 1
            n //= d
        d += 1
    if n > 1:
        factors[str(n)] = factors.get(str(n), 0) + 1
    return {"factors": factors, "primes": [p for p in range(bound) if is_prime(p)]}
