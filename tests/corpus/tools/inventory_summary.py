"""Summarise an inventory using a dataclass for each item."""
from dataclasses import dataclass, field, asdict


@dataclass(order=True)
class Item:
    """One line of inventory."""
    value: float
    name: str = field(compare=False)
    quantity: int = field(compare=False, default=0)


def inventory_summary(items):
    """items: [[name, quantity, unit_price], ...]; return total value and items sorted by value."""
    stock = [Item(value=round(q * p, 2), name=n, quantity=q) for n, q, p in items]
    stock.sort(reverse=True)
    return {
        "total": round(sum(i.value for i in stock), 2),
        "by_value": [asdict(i) for i in stock],
        "out_of_stock": [i.name for i in stock if i.quantity == 0],
    }
