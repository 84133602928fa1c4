"""Look up characters by Unicode name and report their decompositions."""
import unicodedata


def lookup_unicode(names):
    """Return {name: [char, decomposition, mirrored]} for each Unicode character name."""
    result = {}
    for name in names:
        ch = unicodedata.lookup(name)
        result[name] = [ch, unicodedata.decomposition(ch), bool(unicodedata.mirrored(ch))]
    return result
