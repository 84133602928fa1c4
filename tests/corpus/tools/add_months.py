"""Add a number of months to a date, clamping to the end of the month."""
import calendar
import datetime


def add_months(iso_date, months):
    """Return the ISO date that is `months` calendar months after iso_date."""
    start = datetime.date.fromisoformat(iso_date)
    month_index = start.month - 1 + months
    year = start.year + month_index // 12
    month = month_index % 12 + 1
    last_day = calendar.monthrange(year, month)[1]
    return datetime.date(year, month, min(start.day, last_day)).isoformat()
