"""Reformat a numeric date into a long English form like 'March 05, 2021'."""
from datetime import datetime


def format_date_long(date_str, input_format="%d/%m/%Y"):
    """Parse the date and return it as 'Weekday, Month DD, YYYY'."""
    parsed = datetime.strptime(date_str, input_format)
    return parsed.strftime("%A, %B %d, %Y")
