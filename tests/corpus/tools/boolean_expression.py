"""Evaluate BBH boolean_expressions such as 'not ( True ) and ( False or True )' without eval."""


def boolean_expression(expression):
    """Evaluate and/or/not with parentheses using a precedence-climbing parser; return bool."""
    tokens = expression.replace("(", " ( ").replace(")", " ) ").split()
    index = [0]

    def parse_or():
        value = parse_and()
        while index[0] < len(tokens) and tokens[index[0]] == "or":
            index[0] += 1
            right = parse_and()
            value = value or right
        return value

    def parse_and():
        value = parse_not()
        while index[0] < len(tokens) and tokens[index[0]] == "and":
            index[0] += 1
            right = parse_not()
            value = value and right
        return value

    def parse_not():
        token = tokens[index[0]]
        index[0] += 1
        if token == "not":
            return not parse_not()
        if token == "(":
            value = parse_or()
            index[0] += 1
            return value
        return token == "True"

    return parse_or()
