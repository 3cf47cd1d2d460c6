"""Processes that end when the process that started them ends, even by SIGKILL (Linux).

The extraction process of a replica is a fork of a multiprocessing forkserver, which the
replica starts. Neither notices by itself that a replica killed outright is gone: both would
stay, holding memory and the replica's pipes, for every kill. ``die_with_parent`` asks the
kernel to kill the calling process when its parent ends; the forkserver calls it by importing
``matcher.forkserver_preload``, the extraction process in its initializer.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) \
    if sys.platform == "linux" else None


def die_with_parent() -> None:
    """Be killed (SIGKILL) when the parent process ends; exit now if it already has."""
    if _libc is None:
        return
    parent = os.getppid()
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent ended before the request took hold
        os._exit(1)
