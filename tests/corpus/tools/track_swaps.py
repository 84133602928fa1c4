"""Track who holds which object after a series of pairwise swaps (BBH tracking_shuffled_objects)."""
import re


def track_swaps(initial, swaps, person):
    """initial: {person: object}; swaps: ['Alice and Bob swap balls', ...]; return person's object."""
    holding = dict(initial)
    swap_re = re.compile(r"^(\w+) and (\w+) (?:swap|switch|trade)")
    for sentence in swaps:
        match = swap_re.match(sentence.strip())
        if match:
            a, b = match.group(1), match.group(2)
            holding[a], holding[b] = holding[b], holding[a]
    return holding[person]
