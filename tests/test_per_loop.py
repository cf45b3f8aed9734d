"""What lives as long as an event loop: each thread's own loop, and values kept per loop."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time

import pytest

from rxagent._per_loop import thread_loop  # the unit under test


@pytest.mark.skipif(sys.platform != "linux", reason="epoll, shared with a forked child, is Linux's")
def test_a_forked_child_leaves_the_parent_s_thread_loops_working() -> None:
    # A child forked while a worker thread has its loop drops that thread, and with it the
    # thread's loop. Closing the loop there unregistered its wake-up socket from the epoll
    # instance the child shares with the parent: the parent's loop then missed every wake-up
    # from another thread (a sub-agent in a sync tool hung after any fork).
    made, forked = threading.Event(), threading.Event()
    woke: list[str] = []

    def worker() -> None:
        loop = thread_loop()
        made.set()
        forked.wait(10)
        arrived = loop.create_future()

        def wake_later() -> None:
            time.sleep(0.2)  # (so that the loop is asleep by then; no timing is asserted)
            loop.call_soon_threadsafe(arrived.set_result, "woke")

        # Once the loop runs, another thread wakes it: nothing but the wake-up socket can end
        # this wait, since no timer is pending.
        loop.call_soon(lambda: threading.Thread(target=wake_later).start())
        woke.append(loop.run_until_complete(arrived))

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    assert made.wait(10)
    pid = os.fork()
    if pid == 0:  # the child: leave at once, as a forked worker that execs would
        os._exit(0)
    os.waitpid(pid, 0)
    forked.set()
    thread.join(10)
    assert woke == ["woke"], "the worker's loop never woke up after the fork"


def test_a_thread_s_loop_is_its_own_and_is_reused() -> None:
    loops: list[asyncio.AbstractEventLoop] = []
    thread = threading.Thread(target=lambda: loops.extend([thread_loop(), thread_loop()]))
    thread.start()
    thread.join(10)
    assert loops[0] is loops[1] and loops[0] is not thread_loop()
