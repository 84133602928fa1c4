"""Build a month's calendar as weeks of day numbers and count a given weekday."""
import calendar


def month_calendar(year, month, weekday="Friday"):
    """Return the weeks (Monday first, 0 for padding) and how many times weekday occurs."""
    weeks = calendar.monthcalendar(year, month)
    index = list(calendar.day_name).index(weekday)
    count = sum(1 for week in weeks if week[index] != 0)
    return {"weeks": weeks, "count": count, "month_name": calendar.month_name[month]}
