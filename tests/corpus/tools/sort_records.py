"""Sort a list of records (dicts) by several keys, some descending."""


def sort_records(records, keys):
    """Sort records by keys given as ['field', 'asc'|'desc'] pairs, most significant first."""
    result = list(records)
    for field, direction in reversed(keys):
        result.sort(key=lambda record: record[field], reverse=(direction == "desc"))
    return result
