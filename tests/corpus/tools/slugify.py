"""Turn a title into a URL slug, transliterating accents to ASCII."""
import re
import unicodedata


def slugify(title, max_length=50):
    """Return a lower-case, hyphen-separated ASCII slug."""
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^\w\s-]", "", ascii_text).strip().lower()
    slug = re.sub(r"[-\s]+", "-", slug)
    return slug[:max_length].rstrip("-")
