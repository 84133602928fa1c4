"""The web console at ``/ui`` on ``latm serve``'s HTTP listener: a tenant's tools, how each
was verified, what they cost, and making new ones (see README, "Web console")."""

from orchestrator.console._app import Console, console_app

__all__ = ["Console", "console_app"]
