"""Greedy earliest-deadline-first schedule reporting lateness for each task."""
from collections import namedtuple

Task = namedtuple("Task", ["name", "duration", "deadline"])


def schedule_by_deadline(tasks):
    """tasks: [[name, duration, deadline], ...]; return order, finish times and max lateness."""
    queue = sorted((Task(*t) for t in tasks), key=lambda t: (t.deadline, t.name))
    clock = 0
    plan = []
    max_late = 0
    for task in queue:
        clock += task.duration
        late = max(0, clock - task.deadline)
        max_late = max(max_late, late)
        plan.append({"task": task.name, "finish": clock, "late": late})
    return {"plan": plan, "max_lateness": max_late}
