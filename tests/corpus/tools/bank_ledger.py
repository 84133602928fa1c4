"""Apply deposits and withdrawals to accounts kept as small objects, with exact decimal money."""
from decimal import Decimal
from typing import Dict, List, Optional


class Account:
    """A bank account with an owner and a Decimal balance."""

    def __init__(self, owner: str, balance: Optional[str] = None):
        self.owner = owner
        self.balance = Decimal(balance or "0")

    def __repr__(self) -> str:
        return f"Account({self.owner!r}, {self.balance})"

    def __lt__(self, other: "Account") -> bool:
        return self.balance < other.balance


def bank_ledger(opening: Dict[str, str], operations: List[List[str]]) -> Dict[str, object]:
    """operations: [[owner, 'deposit'|'withdraw', amount], ...]; overdrafts are rejected."""
    accounts = {name: Account(name, bal) for name, bal in opening.items()}
    rejected = []
    for owner, kind, amount in operations:
        account = accounts.setdefault(owner, Account(owner))
        value = Decimal(amount)
        if kind == "withdraw" and value > account.balance:
            rejected.append(f"{owner}:{amount}")
            continue
        account.balance += value if kind == "deposit" else -value
    richest = max(accounts.values())
    return {"balances": {n: str(a.balance) for n, a in sorted(accounts.items())},
            "rejected": rejected, "richest": repr(richest)}
