"""Serialise a record to canonical JSON, parse it back and report whether it survived."""
import json


def json_round_trip(record):
    """Return the canonical (sorted, compact) JSON text, the pretty form, and round-trip equality."""
    compact = json.dumps(record, sort_keys=True, separators=(",", ":"))
    pretty = json.dumps(record, sort_keys=True, indent=2)
    restored = json.loads(compact)
    return {"compact": compact, "pretty_lines": len(pretty.splitlines()), "same": restored == record}
