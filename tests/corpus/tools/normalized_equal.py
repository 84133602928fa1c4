"""Compare strings after Unicode normalisation and case folding."""
import unicodedata


def normalized_equal(a, b, form="NFC"):
    """Return whether a and b are equal raw, after normalisation, and after casefold too."""
    na, nb = unicodedata.normalize(form, a), unicodedata.normalize(form, b)
    return {
        "raw": a == b,
        "normalized": na == nb,
        "casefolded": na.casefold() == nb.casefold(),
        "lengths": [len(a), len(b), len(na), len(nb)],
        "is_normalized": unicodedata.is_normalized(form, a),
    }
