"""bench._common.TreePeak counts a process tree's memory once, even mid-spawn."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
import pytest

from bench._common import _SYS_KCMP, TreePeak, shares_memory

pytestmark = pytest.mark.skipif(_SYS_KCMP is None, reason="kcmp(2) is Linux on x86_64/aarch64")

_CLONE_VM = 0x100


@contextmanager
def memory_sharing_child() -> Iterator[int]:
    """A child process that shares this one's memory, as a spawned child does before ``exec``.

    ``clone(CLONE_VM)`` runs libc's ``pause`` on a stack of its own, so no Python runs in it;
    it is killed and reaped on exit.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    stack = ctypes.create_string_buffer(1 << 16)
    top = ctypes.c_void_p(ctypes.addressof(stack) + (1 << 16) - 64)
    libc.clone.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    pid = libc.clone(
        ctypes.cast(libc.pause, ctypes.c_void_p), top, _CLONE_VM | signal.SIGCHLD, None
    )
    assert pid > 0, os.strerror(ctypes.get_errno())
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_shares_memory_tells_threads_and_spawned_children_from_other_processes() -> None:
    me = os.getpid()
    assert shares_memory(me, me)
    tid: list[int] = []
    started, release = threading.Event(), threading.Event()

    def live() -> None:
        tid.append(threading.get_native_id())
        started.set()
        release.wait()

    thread = threading.Thread(target=live)
    thread.start()
    started.wait()
    try:
        assert shares_memory(me, tid[0])
    finally:
        release.set()
        thread.join()
    with memory_sharing_child() as child:
        assert shares_memory(me, child)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        assert not shares_memory(me, other.pid)
    finally:
        other.kill()
        other.wait()


def test_tree_peak_counts_a_child_that_shares_the_parents_memory_once() -> None:
    ballast = bytearray(200 * 2**20)  # 200 MB resident in this process
    ballast[::4096] = b"x" * len(ballast[::4096])
    own_mb = psutil.Process().memory_info().rss / 2**20
    with memory_sharing_child() as child:
        assert psutil.Process(child).memory_info().rss / 2**20 > 150  # it reports our pages
        with TreePeak(interval=0.05) as peak:
            pass
    assert peak.mb < own_mb + 100  # counted twice would be about 2 x own_mb


def test_tree_peak_adds_a_child_with_its_own_memory() -> None:
    code = (
        "b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096]); import time; time.sleep(30)"
    )
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        proc = psutil.Process(child.pid)
        while proc.memory_info().rss < 300 * 2**20:
            assert child.poll() is None, "the child exited before filling its memory"
        own_mb = psutil.Process().memory_info().rss / 2**20
        with TreePeak(interval=0.05) as peak:
            pass
        assert peak.mb > own_mb + 290
    finally:
        child.kill()
        child.wait()
