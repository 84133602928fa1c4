"""Assign standard competition ranks (1, 2, 2, 4) to players by score."""


def competition_ranking(scores):
    """Given {'name': score}, return [[rank, name, score], ...] highest score first."""
    ordered = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    ranking = []
    previous_score = None
    rank = 0
    for position, (name, score) in enumerate(ordered, start=1):
        if score != previous_score:
            rank = position
            previous_score = score
        ranking.append([rank, name, score])
    return ranking
