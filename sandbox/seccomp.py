"""A seccomp filter for worker processes: no new processes, threads or namespaces.

``RLIMIT_NPROC`` is meant to stop tool code from forking or starting threads, but
the kernel ignores it for a process whose real uid is root outside any user
namespace, which is what a bubblewrap sandbox started by a root orchestrator
runs as (uid 65534 inside maps to 0 outside). This filter holds whoever runs the
server: once installed, ``clone``, ``fork``, ``vfork`` and ``clone3`` fail with
EPERM, and so do the calls that create namespaces or reach other processes or the
kernel's more exposed interfaces: no signal to any process (``kill``, ``tgkill``,
``pidfd_send_signal`` ...: the server, template and zygote share the worker's uid),
no ``ptrace`` or ``process_vm_*``, and no ``prctl`` (a worker cannot make itself
dumpable again; see :mod:`sandbox.hardening`). It is installed after the worker's
last fork-free set-up step and cannot be removed. Docker's default profile and gVisor add
their own filters on top.

The filter is a plain classic-BPF program built here and installed through
``prctl`` with ctypes (there is no binding in the standard library).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct

from sandbox.hardening import libc_prctl

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
X32_SYSCALL_BIT = 0x40000000

# BPF opcodes: ld word absolute, jump if equal / greater or equal, return.
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JGE_K = 0x35
BPF_RET_K = 0x06
OFFSET_NR = 0
OFFSET_ARCH = 4
OFFSET_ARG0 = 16  # the low 32 bits of the first argument (little-endian machines)
OFFSET_ARG1 = 24  # ... and of the second
INSTRUCTION_BYTES = 8
# Calls that send a signal; the pid (or thread group id) they target comes first.
SIGNAL_NAMES = frozenset({"kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"})
# Commands that make the kernel signal another process for us: F_SETOWN, F_SETSIG and
# F_SETOWN_EX with O_ASYNC (SIGIO to any pid of the same uid), FIOSETOWN, SIOCSPGRP.
DENIED_COMMANDS = {"fcntl": (8, 10, 15), "ioctl": (0x8901, 0x8902)}
# Calls allowed only on the calling process itself, named by pid 0 (glibc's getrlimit
# and setrlimit): prlimit64 on another pid would change the limits of the zygote or the
# server that later calls run under.
SELF_ONLY = frozenset({"prlimit64"})

# The denied calls, by architecture: (audit arch, {name: number}).
DENIED_NAMES = (
    "clone",
    "clone3",
    "fork",
    "vfork",
    "unshare",
    "setns",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "io_uring_setup",
    "kill",
    "tkill",
    "tgkill",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "pidfd_open",
    "pidfd_send_signal",
    "pidfd_getfd",
    "process_madvise",
    "kcmp",
    "prctl",
    "setpgid",  # leaving its process group would let it outlive its call
    "setsid",
    "fcntl",  # only some commands: DENIED_COMMANDS
    "ioctl",
    "setpriority",  # another process's priority, limits or scheduling: the server's too
    "ioprio_set",
    "migrate_pages",
    "move_pages",
    "sched_setparam",
    "sched_setscheduler",
    "sched_setaffinity",
    "sched_setattr",
    "shmget",  # SysV and POSIX message-queue IPC: objects that outlive the call
    "shmat",
    "shmctl",
    "shmdt",
    "semget",
    "semop",
    "semctl",
    "semtimedop",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
    "prlimit64",
)
SYSCALLS: dict[str, tuple[int, dict[str, int]]] = {
    "x86_64": (
        0xC000003E,
        {
            "clone": 56,
            "clone3": 435,
            "fork": 57,
            "vfork": 58,
            "unshare": 272,
            "setns": 308,
            "ptrace": 101,
            "process_vm_readv": 310,
            "process_vm_writev": 311,
            "mount": 165,
            "umount2": 166,
            "pivot_root": 155,
            "chroot": 161,
            "bpf": 321,
            "perf_event_open": 298,
            "userfaultfd": 323,
            "keyctl": 250,
            "add_key": 248,
            "request_key": 249,
            "io_uring_setup": 425,
            "kill": 62,
            "tkill": 200,
            "tgkill": 234,
            "rt_sigqueueinfo": 129,
            "rt_tgsigqueueinfo": 297,
            "pidfd_open": 434,
            "pidfd_send_signal": 424,
            "pidfd_getfd": 438,
            "process_madvise": 440,
            "kcmp": 312,
            "prctl": 157,
            "setpgid": 109,
            "setsid": 112,
            "fcntl": 72,
            "ioctl": 16,
            "setpriority": 141,
            "ioprio_set": 251,
            "migrate_pages": 256,
            "move_pages": 279,
            "sched_setparam": 142,
            "sched_setscheduler": 144,
            "sched_setaffinity": 203,
            "sched_setattr": 314,
            "shmget": 29,
            "shmat": 30,
            "shmctl": 31,
            "shmdt": 67,
            "semget": 64,
            "semop": 65,
            "semctl": 66,
            "semtimedop": 220,
            "msgget": 68,
            "msgsnd": 69,
            "msgrcv": 70,
            "msgctl": 71,
            "mq_open": 240,
            "mq_unlink": 241,
            "mq_timedsend": 242,
            "mq_timedreceive": 243,
            "mq_notify": 244,
            "mq_getsetattr": 245,
            "prlimit64": 302,
        },
    ),
    "aarch64": (
        0xC00000B7,
        {
            "clone": 220,
            "clone3": 435,
            "unshare": 97,
            "setns": 268,
            "ptrace": 117,
            "process_vm_readv": 270,
            "process_vm_writev": 271,
            "mount": 40,
            "umount2": 39,
            "pivot_root": 41,
            "chroot": 51,
            "bpf": 280,
            "perf_event_open": 241,
            "userfaultfd": 282,
            "keyctl": 219,
            "add_key": 217,
            "request_key": 218,
            "io_uring_setup": 425,
            "kill": 129,
            "tkill": 130,
            "tgkill": 131,
            "rt_sigqueueinfo": 138,
            "rt_tgsigqueueinfo": 240,
            "pidfd_open": 434,
            "pidfd_send_signal": 424,
            "pidfd_getfd": 438,
            "process_madvise": 440,
            "kcmp": 272,
            "prctl": 167,
            "setpgid": 154,
            "setsid": 157,
            "fcntl": 25,
            "ioctl": 29,
            "setpriority": 140,
            "ioprio_set": 30,
            "migrate_pages": 238,
            "move_pages": 239,
            "sched_setparam": 118,
            "sched_setscheduler": 119,
            "sched_setaffinity": 122,
            "sched_setattr": 274,
            "shmget": 194,
            "shmat": 196,
            "shmctl": 195,
            "shmdt": 197,
            "semget": 190,
            "semop": 193,
            "semctl": 191,
            "semtimedop": 192,
            "msgget": 186,
            "msgsnd": 189,
            "msgrcv": 188,
            "msgctl": 187,
            "mq_open": 180,
            "mq_unlink": 181,
            "mq_timedsend": 182,
            "mq_timedreceive": 183,
            "mq_notify": 184,
            "mq_getsetattr": 185,
            "prlimit64": 261,
        },
    ),
}


def _instruction(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def build_filter(machine: str | None = None, pid: int = 0) -> bytes | None:
    """The filter program for ``machine`` (this one by default); None when unknown.

    The calls that send a signal are allowed only with ``pid`` as their first argument
    (a worker may signal itself, as ``os.abort()`` does); the word at
    :func:`pid_offset` holds it, for :meth:`Installer.install` to set in each worker.
    ``fcntl`` and ``ioctl`` are allowed except with the commands in
    :data:`DENIED_COMMANDS`, ``prlimit64`` only on pid 0 (the caller); every other
    listed call is denied.
    """
    spec = SYSCALLS.get(machine or platform.machine())
    if spec is None:
        return None
    arch, numbers = spec
    program: list[_Line] = [
        (None, BPF_LD_W_ABS, 0, 0, OFFSET_ARCH),
        # Another architecture's calling convention (i386 on x86_64): deny all of it.
        (None, BPF_JEQ_K, 0, "deny", arch),
        (None, BPF_LD_W_ABS, 0, 0, OFFSET_NR),
        # The x32 ABI's numbers alias the native ones with this bit set: deny them.
        (None, BPF_JGE_K, "deny", 0, X32_SYSCALL_BIT),
    ]
    for name, number in sorted(numbers.items(), key=lambda item: item[1]):
        program.append((None, BPF_JEQ_K, _target(name), 0, number))
    program.append((None, BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    for name, commands in DENIED_COMMANDS.items():
        program.append((name, BPF_LD_W_ABS, 0, 0, OFFSET_ARG1))
        program += [(None, BPF_JEQ_K, "deny", 0, command) for command in commands]
        program.append((None, BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    program += [
        ("pid 0", BPF_LD_W_ABS, 0, 0, OFFSET_ARG0),
        (None, BPF_JEQ_K, 0, "deny", 0),
        (None, BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
        ("self", BPF_LD_W_ABS, 0, 0, OFFSET_ARG0),
        (None, BPF_JEQ_K, 0, "deny", pid),
        (None, BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
        ("deny", BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.EPERM),
    ]
    return _assemble(program)


def _target(name: str) -> str:
    """Where the jump for call ``name`` goes: the check of its arguments, or "deny"."""
    if name in SIGNAL_NAMES:
        return "self"
    if name in SELF_ONLY:
        return "pid 0"
    return name if name in DENIED_COMMANDS else "deny"


# One instruction: its label (or None), opcode, jump-if-true and jump-if-false (a label
# or a relative offset), and constant.
_Line = tuple[str | None, int, str | int, str | int, int]


def _assemble(program: list[_Line]) -> bytes:
    labels = {line[0]: index for index, line in enumerate(program) if line[0]}

    def offset(target: str | int, index: int) -> int:
        return target if isinstance(target, int) else labels[target] - index - 1

    return b"".join(
        _instruction(code, offset(jt, index), offset(jf, index), k)
        for index, (_, code, jt, jf, k) in enumerate(program)
    )


def pid_offset(program: bytes) -> int:
    """Where in ``program`` the pid a worker may signal is: the constant of the
    third-last instruction."""
    return len(program) - 3 * INSTRUCTION_BYTES + 4


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


class Installer:
    """The filter and the ``prctl`` calls that install it, prepared once.

    The template builds one before it forks (the program, the libc handle and the
    ctypes structures then live in every worker's inherited heap), so a worker's
    :meth:`install` is two system calls and no Python set-up.
    """

    def __init__(self, machine: str | None = None) -> None:
        prctl = libc_prctl()
        self.program = build_filter(machine) if prctl is not None else None
        if prctl is None or self.program is None:
            return
        self._prctl = prctl
        self._buffer = ctypes.create_string_buffer(self.program, len(self.program))
        self._fprog = _SockFprog(len(self.program) // 8, ctypes.addressof(self._buffer))
        self._fprog_ref = ctypes.byref(self._fprog)

    def install(self) -> bool:
        """Install the filter in this process (and every thread it may later have).

        Returns False where it cannot be installed (an unknown architecture, or a
        kernel without seccomp); the other layers then still apply.
        """
        if self.program is None:
            return False
        struct.pack_into("=I", self._buffer, pid_offset(self.program), os.getpid())
        if self._prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return False
        return self._prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, self._fprog_ref, 0, 0) == 0
