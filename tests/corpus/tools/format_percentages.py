"""Turn counts into percentage strings of the total using str.format specs."""


def format_percentages(counts):
    """Return {label: 'nn.n%'} for each label, plus a right-aligned report line per label."""
    total = sum(counts.values())
    shares = {label: "{:.1%}".format(count / total) for label, count in counts.items()}
    report = ["{label:>8}: {count:4d} ({share})".format(label=label, count=counts[label], share=share)
              for label, share in shares.items()]
    return {"shares": shares, "report": report}
