"""Return the weekday name of an ISO date."""
import datetime


def weekday_of_date(iso_date):
    """Given 'YYYY-MM-DD', return the full English weekday name, e.g. 'Monday'."""
    day = datetime.date.fromisoformat(iso_date)
    return day.strftime("%A")
