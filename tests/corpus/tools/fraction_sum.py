"""Add fractions given as strings and return the reduced result."""
from fractions import Fraction


def fraction_sum(fractions):
    """Sum strings like '1/3', '2', '-5/6' exactly; return the result as 'p/q' and a float."""
    total = sum((Fraction(f) for f in fractions), Fraction(0))
    return {"exact": str(total), "decimal": round(float(total), 6),
            "mixed": f"{total.numerator // total.denominator} {total.numerator % total.denominator}/{total.denominator}"}
