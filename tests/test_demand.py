"""The demand signal: holds, releases, waits on loops and in threads, linked demands."""

from __future__ import annotations

import threading

import anyio
import pytest

from rxagent._demand import Demand  # the demand unit itself, on purpose


def test_stop_blocking_lets_blocked_threads_go_but_keeps_the_demand_held() -> None:
    demand = Demand()
    demand.hold()
    answers: list[bool] = []
    waiting = threading.Thread(target=lambda: answers.append(demand.wait_blocking()))
    waiting.start()
    while not demand._blocked:  # the thread is registered as blocked
        waiting.join(0.001)
    demand.stop_blocking(threading.get_ident())
    waiting.join(10)
    assert answers == [False]
    assert demand.wait_blocking() is False, "and later waits return at once"
    assert not demand.ready, "producers on a loop stay held"


def test_demand_is_ready_until_held_and_counts_holds() -> None:
    demand = Demand()
    assert demand.ready
    demand.hold()
    demand.hold()
    assert not demand.ready
    demand.release()
    assert not demand.ready, "one hold is still in place"
    demand.release()
    assert demand.ready
    demand.release()  # an extra release is ignored, not negative
    demand.hold()
    assert not demand.ready


def test_call_when_ready_runs_now_or_on_release() -> None:
    demand = Demand()
    calls: list[str] = []
    demand.call_when_ready(lambda: calls.append("now"))
    demand.hold()
    demand.call_when_ready(lambda: calls.append("later"))
    assert calls == ["now"]
    demand.release()
    assert calls == ["now", "later"]


def test_linked_upstream_is_held_while_any_downstream_is() -> None:
    shared = Demand()
    first, second = Demand(), Demand()
    first.link_upstream(shared)
    second.link_upstream(shared)
    first.hold()
    second.hold()
    first.release()
    assert not shared.ready, "the second consumer still holds the shared run"
    second.release()
    assert shared.ready
    first.hold()
    first.unlink_upstream(shared)
    assert shared.ready, "unlinking withdraws the hold it placed"


def test_wait_blocking_returns_when_released_from_another_thread() -> None:
    demand = Demand()
    demand.hold()
    released = threading.Timer(0.01, demand.release)
    released.start()
    assert demand.wait_blocking(timeout=10)
    assert demand.ready


@pytest.mark.anyio
async def test_wait_resumes_when_released_from_another_thread() -> None:
    demand = Demand()
    demand.hold()
    threading.Timer(0.01, demand.release).start()
    with anyio.fail_after(10):
        await demand.wait()
    assert demand.ready
