"""Solve a*x^2 + b*x + c = 0, returning real or complex roots."""
import cmath
import math


def quadratic_roots(a, b, c):
    """Return the roots as strings (complex roots like '(-1+2j)'), and the discriminant."""
    disc = b * b - 4 * a * c
    if disc >= 0:
        root = math.sqrt(disc)
        roots = sorted({(-b - root) / (2 * a), (-b + root) / (2 * a)})
        return {"discriminant": disc, "roots": [str(round(x, 4)) for x in roots]}
    root = cmath.sqrt(disc)
    roots = [(-b - root) / (2 * a), (-b + root) / (2 * a)]
    return {"discriminant": disc, "roots": [str(complex(round(z.real, 4), round(z.imag, 4))) for z in roots],
            "modulus": round(abs(roots[0]), 4), "phase": round(cmath.phase(roots[1]), 4)}
