"""Find the earliest slot where everyone is available for a meeting of a given length."""


def intersect(a, b):
    """Intersect two sorted lists of (start, end) availability windows."""
    i = j = 0
    out = []
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def common_meeting_slot(availability, duration):
    """availability: {person: [[start_hour, end_hour], ...]}; return [start, start+duration] or None."""
    windows = None
    for slots in availability.values():
        slots = sorted(tuple(s) for s in slots)
        windows = slots if windows is None else intersect(windows, slots)
    for start, end in windows or []:
        if end - start >= duration:
            return [start, start + duration]
    return None
