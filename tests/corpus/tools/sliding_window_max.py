"""Compute the maximum of every window of size k with a monotonic deque."""
from collections import deque


def sliding_window_max(nums, k):
    """Return the list of window maxima."""
    window = deque()
    maxima = []
    for i, value in enumerate(nums):
        while window and nums[window[-1]] <= value:
            window.pop()
        window.append(i)
        if window[0] <= i - k:
            window.popleft()
        if i >= k - 1:
            maxima.append(nums[window[0]])
    return maxima
