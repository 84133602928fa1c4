"""Fill a $-placeholder template with values using string.Template."""
from string import Template


def template_fill(template, values):
    """Return the filled text; missing placeholders are left untouched (safe_substitute)."""
    return Template(template).safe_substitute(values)
