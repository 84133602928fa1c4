"""Evaluate BBH multistep_arithmetic expressions like ((-1 + 2) * (3 - -4)) without eval."""
import re


class Parser:
    """Recursive-descent parser over + - * and parentheses with integer operands."""

    def __init__(self, expression):
        self.tokens = re.findall(r"\d+|[()+\-*]", expression) + ["end"]
        self.pos = 0

    def take(self):
        self.pos += 1
        return self.tokens[self.pos - 1]

    def expr(self):
        value = self.term()
        while self.tokens[self.pos] in ("+", "-"):
            value = value + self.term() if self.take() == "+" else value - self.term()
        return value

    def term(self):
        value = self.factor()
        while self.tokens[self.pos] == "*":
            self.take()
            value *= self.factor()
        return value

    def factor(self):
        tok = self.take()
        if tok == "(":
            value = self.expr()
            self.take()
            return value
        return -self.factor() if tok == "-" else int(tok)


def multistep_arithmetic(expression):
    """Parse and evaluate the expression (unary minus allowed); return the integer result."""
    return Parser(expression).expr()
