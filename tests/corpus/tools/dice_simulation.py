"""Simulate repeated dice rolls with a seeded generator and tally the sums."""
import random
from collections import Counter


def dice_simulation(rolls, dice=2, sides=6, seed=42):
    """Return the most common sum, the mean sum and the first five sums for a seeded run."""
    rng = random.Random(seed)
    sums = [sum(rng.randint(1, sides) for d in range(dice)) for r in range(rolls)]
    counts = Counter(sums)
    most_common_sum, frequency = counts.most_common(1)[0]
    deck = list(range(1, 11))
    rng.shuffle(deck)
    return {"most_common": most_common_sum, "frequency": frequency,
            "mean": round(sum(sums) / rolls, 3), "first": sums[:5], "shuffled": deck,
            "choice": rng.choice(["heads", "tails"]), "sample": sorted(rng.sample(range(100), 3))}
