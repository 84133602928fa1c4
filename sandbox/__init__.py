"""The LATM sandbox server: runs model-written tools inside the trust boundary.

This package is what runs *inside* a sandbox (a container or a namespaced
process). It has no dependency on the orchestrator.
"""

from sandbox.errors import PolicyViolation, SandboxError, SourceSyntaxError, Violation
from sandbox.limits import DEFAULT_LIMITS, MAX_LIMITS, Limits
from sandbox.policy import Allowlist, default_allowlist

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_LIMITS",
    "Allowlist",
    "Limits",
    "PolicyViolation",
    "SandboxError",
    "SourceSyntaxError",
    "Violation",
    "__version__",
    "default_allowlist",
]
