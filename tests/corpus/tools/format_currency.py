"""Format amounts as currency strings with thousands separators."""


def format_currency(amounts, symbol="$"):
    """Return each amount like '$1,234.50', negatives as '-$12.00'."""
    formatted = []
    for amount in amounts:
        sign = "-" if amount < 0 else ""
        formatted.append(f"{sign}{symbol}{abs(amount):,.2f}")
    return formatted
