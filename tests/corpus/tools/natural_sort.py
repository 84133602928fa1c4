"""Sort strings in human 'natural' order, so file2 comes before file10."""
import re


def natural_key(text):
    """Split text into a list of lower-cased strings and integers for comparison."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def natural_sort(items):
    """Return the items sorted in natural order."""
    return sorted(items, key=natural_key)
