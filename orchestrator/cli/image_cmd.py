"""``latm image build`` and ``latm image list``: the sandbox container images."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from orchestrator import images
from orchestrator.cli._tables import fitted
from orchestrator.errors import LatmError


def register(commands: Any) -> None:
    parser = commands.add_parser("image", help="build or list the sandbox container images")
    sub = parser.add_subparsers(dest="image_command", required=True)

    build = sub.add_parser(
        "build", help="build the sandbox image (tagged VERSION and VERSION-HASH)"
    )
    base = build.add_mutually_exclusive_group()
    base.add_argument(
        "--base",
        default=None,
        help=f"base image with python3 (default: {images.OFFLINE_BASE} when it exists, "
        f"else {images.PUBLIC_BASE})",
    )
    base.add_argument(
        "--offline-base",
        action="store_true",
        help=f"first build {images.OFFLINE_BASE} from Debian packages with debootstrap "
        "(no registry needed; root); reused when it exists",
    )
    build.add_argument(
        "--rebuild-base",
        action="store_true",
        help="with --offline-base: rebuild it even if present",
    )
    build.add_argument("--mirror", default=None, help="Debian mirror for debootstrap")
    build.add_argument("--force", action="store_true", help="rebuild even if up to date")
    build.set_defaults(run=run_build)

    listing = sub.add_parser("list", help="show the platform's images on this engine")
    listing.take_json()
    listing.set_defaults(run=run_list)


def run_build(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    try:
        client = images.docker_client()
        with console.status("building", spinner="dots") as status:

            def progress(line: str) -> None:
                console.print(line, markup=False, highlight=False, soft_wrap=True)  # unbroken
                status.update(line[:80])

            base = args.base
            if args.offline_base:
                if args.rebuild_base or not images.has_image(client, images.OFFLINE_BASE):
                    images.build_offline_base(client, progress, mirror=args.mirror)
                else:
                    progress(f"{images.OFFLINE_BASE} exists; reusing it")
                base = images.OFFLINE_BASE
            elif base is None:
                base = (
                    images.OFFLINE_BASE
                    if images.has_image(client, images.OFFLINE_BASE)
                    else images.PUBLIC_BASE
                )
            tag = images.build_sandbox_image(client, progress, base=base, force=args.force)
    except LatmError as exc:
        console.print(
            f"[red]latm image build:[/red] {escape(str(exc))}", markup=True, highlight=False
        )
        return 1
    print(tag)
    return 0


def run_list(args: argparse.Namespace) -> int:
    try:
        found = images.list_images(images.docker_client())
    except LatmError as exc:
        print(f"latm image list: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(images.images_as_json(found))
        return 0
    table = Table("tags", "kind", Column("id", no_wrap=True), "size MB", "created", "content hash")
    for image in found:
        table.add_row(
            ", ".join(image.tags) or "<none>",
            image.kind,
            image.id,
            f"{image.size_mb:.1f}",
            image.created,
            image.content_hash,
        )
    console = Console()
    console.print(fitted(table, console))
    return 0
