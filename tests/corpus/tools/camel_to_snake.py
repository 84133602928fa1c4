"""Convert CamelCase or mixedCase identifiers to snake_case."""
import re


def camel_to_snake(name):
    """Insert underscores at word boundaries and lower-case the result."""
    step1 = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    step2 = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", step1)
    return step2.replace("-", "_").lower()
