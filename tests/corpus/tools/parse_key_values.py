"""Parse 'key=value; key2=value2' strings into a dictionary."""
import re


def parse_key_values(text, separator=";"):
    """Split text on the separator and parse each 'key = value' pair into a dict."""
    result = {}
    pair_re = re.compile(r"^\s*(?P<key>[A-Za-z][\w\-]*)\s*[=:]\s*(?P<value>.*?)\s*$")
    for chunk in text.split(separator):
        if not chunk.strip():
            continue
        match = pair_re.match(chunk)
        if match is None:
            continue
        key = match.group("key").lower()
        value = match.group("value").strip('"\'')
        if value.lstrip("-").isdigit():
            value = int(value)
        result[key] = value
    return result
