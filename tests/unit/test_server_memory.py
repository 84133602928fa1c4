"""``latm serve`` gives a large request's memory back once it is freed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent(
    """
    import sys
    from orchestrator.api.server import return_large_blocks

    def rss_kb():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])

    if sys.argv[1] == "set":
        assert return_large_blocks()
    before = rss_kb()
    for _ in range(3):  # an 8 MiB request's buffer, freed, then another
        block = bytearray(8 << 20)
        del block
    print(rss_kb() - before)
    """
)


def retained_kb(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_large_blocks_leave_the_resident_set() -> None:
    assert retained_kb("default") > 4096  # glibc alone keeps the second block resident
    assert retained_kb("set") < 1024
