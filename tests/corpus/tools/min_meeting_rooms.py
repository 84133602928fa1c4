"""Compute the minimum number of rooms needed for a set of meetings."""
import heapq


def min_meeting_rooms(meetings):
    """meetings: list of [start, end]; return the peak number of simultaneous meetings."""
    ends = []
    rooms = 0
    for start, end in sorted(meetings):
        while ends and ends[0] <= start:
            heapq.heappop(ends)
        heapq.heappush(ends, end)
        rooms = max(rooms, len(ends))
    return rooms
