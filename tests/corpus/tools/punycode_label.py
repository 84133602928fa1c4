"""Encode and decode single labels with the punycode codec."""


def punycode_label(label):
    """Return the raw punycode of a Unicode label, its 'xn--' form, and the decoded label."""
    raw = label.encode("punycode").decode("ascii")
    return {"punycode": raw, "ace": "xn--" + raw, "decoded": raw.encode("ascii").decode("punycode")}
