"""Count the days between two dates given in a common format."""
from datetime import datetime


def days_between(first, second, fmt="%Y-%m-%d"):
    """Return the absolute number of days between two dates parsed with fmt."""
    d1 = datetime.strptime(first, fmt).date()
    d2 = datetime.strptime(second, fmt).date()
    return abs((d2 - d1).days)
