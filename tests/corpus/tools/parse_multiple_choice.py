"""Parse a BIG-Bench style question with '(A) ...' options into a question and option map."""
import re


def parse_multiple_choice(text):
    """Split the question stem from its lettered options."""
    parts = re.split(r"\n?Options:\s*\n?", text, maxsplit=1)
    stem = parts[0].strip()
    options = {}
    if len(parts) > 1:
        for letter, body in re.findall(r"\(([A-Z])\)\s*([^\n(]+)", parts[1]):
            options[letter] = body.strip()
    return {"question": stem, "options": options}
