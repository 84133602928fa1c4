"""Complete a Dyck-language bracket sequence by closing all open brackets (BBH dyck_languages)."""


def complete_dyck(sequence):
    """Return the closing brackets needed, space separated, or 'invalid' on a mismatch."""
    pairs = {"(": ")", "[": "]", "{": "}", "<": ">"}
    stack = []
    for token in sequence.split():
        if token in pairs:
            stack.append(token)
        elif stack and pairs[stack[-1]] == token:
            stack.pop()
        else:
            return "invalid"
    return " ".join(pairs[token] for token in reversed(stack))
