"""Apply resource limits, drop root, then become the given command (used by the sandbox).

    python -m interplab.grading.confine --memory BYTES --processes N --file-size BYTES [--uid UID] -- CMD...

Run as the last step before the untrusted notebook's runner, inside bubblewrap when it is
available, so the limits hold for the kernel and everything it starts.
"""

from __future__ import annotations

import argparse
import os
import resource


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--memory", type=int, required=True, help="address space per process, bytes")
    parser.add_argument("--processes", type=int, required=True, help="processes of this user")
    parser.add_argument("--file-size", type=int, required=True, help="largest file it may write, bytes")
    parser.add_argument("--uid", type=int, help="unprivileged user (and group) to become")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.uid is not None:
        os.setgroups([])
        os.setgid(args.uid)
        os.setuid(args.uid)
    resource.setrlimit(resource.RLIMIT_AS, (args.memory, args.memory))
    resource.setrlimit(resource.RLIMIT_NPROC, (args.processes, args.processes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (args.file_size, args.file_size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
