"""Convert an internationalised domain name to its ASCII (punycode) form and back."""


def idna_domain(domain):
    """Return the IDNA ASCII form of the domain and the decoded round trip."""
    ascii_form = domain.encode("idna")
    return {"ascii": ascii_form.decode("ascii"), "unicode": ascii_form.decode("idna")}
