"""Answer date questions like 'what was the date one week/year ago from DATE' in MM/DD/YYYY."""
import datetime


def date_one_year_ago(date_str, unit="year", amount=1):
    """Shift an MM/DD/YYYY date back by amount of 'day', 'week', 'month' or 'year'."""
    month, day, year = (int(part) for part in date_str.split("/"))
    current = datetime.date(year, month, day)
    if unit == "day":
        current -= datetime.timedelta(days=amount)
    elif unit == "week":
        current -= datetime.timedelta(weeks=amount)
    elif unit == "month":
        index = current.month - 1 - amount
        y, m = current.year + index // 12, index % 12 + 1
        current = current.replace(year=y, month=m)
    else:
        current = current.replace(year=current.year - amount)
    return current.strftime("%m/%d/%Y")
