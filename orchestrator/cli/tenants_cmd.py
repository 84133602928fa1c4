"""``latm tenants create | list | revoke | rotate | quota``: tenants of the gRPC API.

A new key is printed once, on stdout, and never stored: only its sha256 is kept.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from typing import Any

from rich.console import Console
from rich.table import Column, Table

from orchestrator.cli._runtime import open_registry
from orchestrator.cli._tables import fitted
from orchestrator.config import Settings
from orchestrator.errors import LatmError
from orchestrator.registry.tenants import Quotas, TenantStore

QUOTA_FLAGS = [item.name for item in fields(Quotas)]


def register(commands: Any) -> None:
    parser = commands.add_parser("tenants", help="create, list, revoke or rotate API tenants")
    sub = parser.add_subparsers(dest="tenants_command", required=True)

    create = sub.add_parser("create", help="create a tenant; prints its API key once")
    create.add_argument("name", help="tenant name: letters, digits, '_', '.', '-'")
    _quota_flags(create)
    create.set_defaults(run=_guarded(run_create))

    listing = sub.add_parser("list", help="tenants, their active keys and quota overrides")
    listing.take_json()
    listing.set_defaults(run=_guarded(run_list))

    revoke = sub.add_parser("revoke", help="revoke a tenant and every key it has")
    revoke.add_argument("name")
    revoke.set_defaults(run=_guarded(run_revoke))

    rotate = sub.add_parser("rotate", help="revoke a tenant's keys; prints a new key once")
    rotate.add_argument("name")
    rotate.set_defaults(run=_guarded(run_rotate))

    quota = sub.add_parser("quota", help="set a tenant's quotas (0 resets one to the default)")
    quota.add_argument("name")
    _quota_flags(quota)
    quota.set_defaults(run=_guarded(run_quota))


def _quota_flags(parser: argparse.ArgumentParser) -> None:
    for name in QUOTA_FLAGS:
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=None, dest=name)


def _overrides(args: argparse.Namespace, *, zero_resets: bool) -> dict[str, int | None]:
    values = {name: getattr(args, name) for name in QUOTA_FLAGS if getattr(args, name) is not None}
    if zero_resets:
        return {name: (value or None) for name, value in values.items()}
    return values


def _guarded(run: Any) -> Any:
    def wrapper(args: argparse.Namespace) -> int:
        try:
            with open_registry(Settings()) as registry:
                return int(run(args, TenantStore(registry)))
        except LatmError as exc:
            print(f"latm tenants {args.tenants_command}: {exc}", file=sys.stderr)
            return 1

    return wrapper


def run_create(args: argparse.Namespace, store: TenantStore) -> int:
    key = store.create(args.name, _overrides(args, zero_resets=False))
    print(key)
    print(f"tenant {args.name} created; the key above is shown only once", file=sys.stderr)
    return 0


def run_rotate(args: argparse.Namespace, store: TenantStore) -> int:
    key = store.rotate(args.name)
    print(key)
    print(f"every earlier key of {args.name} is revoked; the key above is shown only once",
          file=sys.stderr)  # fmt: skip
    return 0


def run_revoke(args: argparse.Namespace, store: TenantStore) -> int:
    store.revoke(args.name)
    print(f"tenant {args.name} and its keys are revoked", file=sys.stderr)
    return 0


def run_quota(args: argparse.Namespace, store: TenantStore) -> int:
    store.set_quotas(args.name, _overrides(args, zero_resets=True))
    return 0


def run_list(args: argparse.Namespace, store: TenantStore) -> int:
    tenants = store.list()
    if args.json:
        rows = [
            {
                "name": t.name,
                "created_at": t.created_at.isoformat(),
                "revoked": t.revoked,
                "active_keys": t.keys,
                "quotas": {k: v for k, v in t.overrides.items() if v is not None},
            }
            for t in tenants
        ]
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(Column("tenant", no_wrap=True), "created", "state", "keys", "quota overrides")
    for t in tenants:
        overrides = ", ".join(f"{k}={v}" for k, v in t.overrides.items() if v is not None)
        table.add_row(
            t.name,
            t.created_at.strftime("%Y-%m-%d %H:%M"),
            "revoked" if t.revoked else "active",
            str(t.keys),
            overrides or "-",
        )
    console = Console()
    console.print(fitted(table, console))
    return 0
