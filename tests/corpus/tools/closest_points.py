"""Find the closest pair of 2-D points using a namedtuple."""
import math
from collections import namedtuple
from itertools import combinations

Point = namedtuple("Point", "label x y")


def closest_points(points):
    """points: [[label, x, y], ...]; return the labels of the closest pair and their distance."""
    pts = [Point(*p) for p in points]
    best = min(combinations(pts, 2), key=lambda pair: math.dist(pair[0][1:], pair[1][1:]))
    a, b = best
    return {"pair": sorted([a.label, b.label]), "distance": round(math.hypot(a.x - b.x, a.y - b.y), 4),
            "first": {"label": a.label, "x": a.x, "y": a.y}}
