"""Solve knights-and-knaves puzzles by trying every truth assignment."""
from itertools import product


def knights_and_knaves(people, claims):
    """claims: {speaker: [kind, target]} with kind 'is_knight', 'is_knave', 'same', 'different'.

    'same'/'different' compare the speaker's type with the target's.  Returns each consistent
    assignment as {person: 'knight'|'knave'}.
    """
    tests = {
        "is_knight": lambda w, s, t: w[t],
        "is_knave": lambda w, s, t: not w[t],
        "same": lambda w, s, t: w[s] == w[t],
        "different": lambda w, s, t: w[s] != w[t],
    }
    answers = []
    for values in product([True, False], repeat=len(people)):
        world = dict(zip(people, values))
        if all(tests[kind](world, speaker, target) == world[speaker]
               for speaker, (kind, target) in claims.items()):
            answers.append({p: "knight" if world[p] else "knave" for p in people})
    return answers
