"""Evaluate BBH multistep_arithmetic_two expressions the way models write it: with eval."""


def arithmetic_eval(expression):
    """Compute an arithmetic or boolean expression given as text, e.g. '((-1 + 2) * 3) ='."""
    text = expression.strip().rstrip("=").strip()
    value = eval(text)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
