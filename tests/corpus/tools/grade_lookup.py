"""Map numeric scores to letter grades with bisect, and keep a sorted leaderboard with insort."""
import bisect


def grade_lookup(scores, breakpoints=(60, 70, 80, 90), grades="FDCBA"):
    """Return letter grades for each score and the scores inserted into a sorted list."""
    letters = [grades[bisect.bisect(breakpoints, s)] for s in scores]
    board = []
    for s in scores:
        bisect.insort(board, s)
    return {"letters": letters, "sorted": board, "rank_of_75": len(board) - bisect.bisect_left(board, 75)}
