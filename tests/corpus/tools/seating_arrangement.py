"""Count round-table seatings where certain pairs must or must not sit together."""
from itertools import permutations


def seating_arrangement(guests, together, apart):
    """Fix the first guest's seat (rotations are equal) and return the valid seatings."""
    first, rest = guests[0], guests[1:]
    valid = []
    for perm in permutations(rest):
        table = [first, *perm]
        n = len(table)
        neighbours = {frozenset((table[i], table[(i + 1) % n])) for i in range(n)}
        ok_together = all(frozenset(pair) in neighbours for pair in together)
        ok_apart = all(frozenset(pair) not in neighbours for pair in apart)
        if ok_together and ok_apart:
            valid.append(table)
    return {"count": len(valid), "seatings": valid[:3]}
