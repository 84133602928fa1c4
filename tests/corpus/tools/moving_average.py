"""Compute a simple moving average over a sliding window."""
from collections import deque


def moving_average(values, window=3):
    """Return the rounded average of each full window of the series."""
    buffer = deque(maxlen=window)
    averages = []
    running = 0.0
    for value in values:
        if len(buffer) == window:
            running -= buffer[0]
        buffer.append(value)
        running += value
        if len(buffer) == window:
            averages.append(round(running / window, 2))
    return averages
