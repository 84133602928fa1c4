"""Simulate the Josephus elimination game with a deque."""
from collections import deque


def josephus_circle(people, step):
    """Return the elimination order and the survivor when every step-th person leaves."""
    circle = deque(people)
    order = []
    while len(circle) > 1:
        circle.rotate(-(step - 1))
        order.append(circle.popleft())
    return {"eliminated": order, "survivor": circle[0]}
