"""How much memory this process has used: the figure benchmarks and batch jobs report."""

from __future__ import annotations

import resource


def peak_rss_mb() -> float:
    """This process's own peak resident memory (MB).

    On Linux ``VmHWM`` is read, not ``getrusage``: ``ru_maxrss`` survives ``execve`` and
    subprocess starts children with ``vfork``, so a small child would report a large parent's
    peak. ``VmHWM`` belongs to the address space and starts afresh at ``exec``.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
