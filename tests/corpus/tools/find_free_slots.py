"""Find free time slots in a working day given busy (start, end) times as 'HH:MM'."""


def to_minutes(hhmm):
    """Convert 'HH:MM' to minutes after midnight."""
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def find_free_slots(busy, day_start="09:00", day_end="17:00", min_length=30):
    """Return free ['HH:MM', 'HH:MM'] slots of at least min_length minutes."""
    cursor, end_of_day = to_minutes(day_start), to_minutes(day_end)
    free = []
    for start, end in sorted((to_minutes(s), to_minutes(e)) for s, e in busy):
        if start - cursor >= min_length:
            free.append((cursor, start))
        cursor = max(cursor, end)
    if end_of_day - cursor >= min_length:
        free.append((cursor, end_of_day))
    return [[f"{s // 60:02d}:{s % 60:02d}", f"{e // 60:02d}:{e % 60:02d}"] for s, e in free]
