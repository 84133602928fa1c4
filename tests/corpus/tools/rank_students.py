"""Rank students by weighted average grade and return the top performers."""
from operator import itemgetter


def rank_students(students, weights, top=3):
    """students: list of {'name', 'grades': {subject: mark}}; returns top names with averages."""
    total_weight = sum(weights.values())
    averages = []
    for student in students:
        score = sum(student["grades"].get(subject, 0) * w for subject, w in weights.items())
        averages.append((student["name"], round(score / total_weight, 2)))
    averages.sort(key=itemgetter(0))
    averages.sort(key=itemgetter(1), reverse=True)
    return [[name, avg] for name, avg in averages[:top]]
