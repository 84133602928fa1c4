"""Answer 'what is the date N days after MM/DD/YYYY' questions (BBH date_understanding)."""
from datetime import datetime, timedelta


def date_after_days(date_str, days):
    """Parse a MM/DD/YYYY date, add (or subtract) days, and return MM/DD/YYYY."""
    start = datetime.strptime(date_str, "%m/%d/%Y")
    result = start + timedelta(days=days)
    return result.strftime("%m/%d/%Y")
