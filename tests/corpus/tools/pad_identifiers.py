"""Build zero-padded identifiers and hex/binary renderings for numbers."""


def pad_identifiers(numbers, prefix="ID", width=5):
    """Return ID strings like 'ID00042' plus hex and binary forms using f-string specs."""
    out = []
    for n in numbers:
        out.append({
            "id": f"{prefix}{n:0{width}d}",
            "hex": f"{n:#06x}",
            "bin": f"{n:b}",
            "centered": f"[{n:^7}]",
        })
    return out
