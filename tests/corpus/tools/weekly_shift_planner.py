"""Assign workers to daily shifts round-robin, skipping the days they are unavailable."""
from collections import deque


def weekly_shift_planner(workers, unavailable, days=None):
    """Return {day: worker} using a rotating queue; unavailable maps worker -> list of days."""
    if days is None:
        days = ["Mon", "Tue", "Wed", "Thu", "Fri"]
    queue = deque(workers)
    plan = {}
    for day in days:
        for attempt in range(len(queue)):
            worker = queue[0]
            queue.rotate(-1)
            if day not in unavailable.get(worker, []):
                plan[day] = worker
                break
        else:
            plan[day] = None
    return plan
