"""Resolve a BBH web_of_lies chain: who tells the truth."""
import re


def web_of_lies(statements, question_person):
    """First statement 'X tells the truth.'/'X lies.', then 'Y says X lies.' etc. Return 'Yes'/'No'."""
    truthful = {}
    first = re.match(r"(\w+) (tells the truth|lies)", statements[0])
    truthful[first.group(1)] = first.group(2) == "tells the truth"
    for sentence in statements[1:]:
        match = re.match(r"(\w+) says (\w+) (tells the truth|lies)", sentence)
        speaker, subject, claim = match.groups()
        claim_true = truthful[subject] == (claim == "tells the truth")
        truthful[speaker] = claim_true
    return "Yes" if truthful[question_person] else "No"
