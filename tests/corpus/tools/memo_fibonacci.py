"""Compute Fibonacci numbers and staircase counts with functools memoisation."""
from functools import lru_cache, cache


@lru_cache(maxsize=None)
def fib(n):
    """Return the n-th Fibonacci number."""
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def memo_fibonacci(n, steps=(1, 2)):
    """Return fib(n) and the number of ways to climb n stairs with the allowed step sizes."""
    @cache
    def ways(m):
        if m == 0:
            return 1
        return sum(ways(m - s) for s in steps if s <= m)

    return {"fib": fib(n), "ways": ways(n), "hits": fib.cache_info().hits > 0}
