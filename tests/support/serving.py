"""A sandbox's serving processes (its server, template and zygote), stopped from outside
its layers, and what a backend runs on: for the red-team suite and the healing bench."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap

from orchestrator.sandboxes.base import Sandbox, SandboxBackend
from orchestrator.sandboxes.docker import DockerBackend, DockerSandbox
from orchestrator.sandboxes.process import ProcessBackend
from tests.support.processes import descendants


def is_docker(backend: SandboxBackend) -> bool:
    """True for a Docker backend (runc or gVisor)."""
    return isinstance(backend, DockerBackend)


def is_gvisor(backend: SandboxBackend) -> bool:
    """True for a Docker backend under gVisor (runsc)."""
    return backend.isolation[0] == "docker+runsc"


# A call that spins until the sandbox stops it.
SPIN = "while True:\n    pass"

# Finds the role's pid from the sandbox's /proc and stops it (run inside a container, or
# on the host against the pids below one bubblewrap).
STOP_ROLE = """
import os, signal, sys
def processes(pids):
    found = {}
    for pid in pids:
        try:
            command = open('/proc/%d/cmdline' % pid, 'rb').read().split(b'\\0')
            stat = open('/proc/%d/stat' % pid).read()
        except OSError:
            continue
        found[pid] = (command, int(stat.rsplit(')', 1)[1].split()[1]))
    return found
def stop(role, pids):
    found = processes(pids)
    server = [p for p, (command, _) in found.items() if b'--listen' in command][0]
    template = [p for p, (_, parent) in found.items() if parent == server][0]
    zygote = [p for p, (_, parent) in found.items() if parent == template][0]
    target = {'server': server, 'template': template, 'zygote': zygote}[role]
    os.kill(target, signal.SIGSTOP)
    return target
if __name__ == '__main__':
    print(stop(sys.argv[1], [int(n) for n in os.listdir('/proc') if n.isdigit()]))
"""


def stop_serving_process(backend: SandboxBackend, sandbox: Sandbox, role: str) -> None:
    """SIGSTOP the sandbox's server, template or zygote from outside its layers."""
    if isinstance(sandbox, DockerSandbox) and role == "server" and not is_gvisor(backend):
        # The server is the container's PID 1, which ignores SIGSTOP sent from inside
        # its own pid namespace: stop it from the host.
        sandbox.container.reload()
        os.kill(sandbox.container.attrs["State"]["Pid"], signal.SIGSTOP)
        return
    if isinstance(sandbox, DockerSandbox):
        done = subprocess.run(
            ["docker", "exec", sandbox.container_id, "python", "-I", "-c", STOP_ROLE, role],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return
    assert isinstance(backend, ProcessBackend)
    wrapper = backend.server_pid(sandbox.tenant)
    assert wrapper is not None
    namespace: dict[str, object] = {"__name__": "stop_role"}
    exec(textwrap.dedent(STOP_ROLE), namespace)
    namespace["stop"](role, descendants(wrapper))  # type: ignore[operator]
