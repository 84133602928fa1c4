"""Solve BBH temporal_sequences: find when a person could have visited a place."""


def temporal_sequence(sightings, closing_hour, wake_hour=5):
    """sightings: [[from_hour, to_hour, activity], ...]; return free [start, end] windows before closing."""
    busy = sorted((s, e) for s, e, activity in sightings)
    free = []
    cursor = wake_hour
    for start, end in busy:
        if start > cursor:
            free.append([cursor, min(start, closing_hour)])
        cursor = max(cursor, end)
    if cursor < closing_hour:
        free.append([cursor, closing_hour])
    return [slot for slot in free if slot[0] < slot[1]]
