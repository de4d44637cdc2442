"""A socket's subscription: frames kept in order, an overflow instead of a blocked publisher, and
a forwarder woken by a frame, an overflow or the socket's end (inbox.bus.Subscription)."""

from __future__ import annotations

import asyncio

from inbox.bus import QUEUE_LIMIT, Bus, Frame


def frame(n: int) -> Frame:
    return Frame(n, 1, f'{{"id":{n}}}')


def test_a_waiting_forwarder_wakes_for_published_frames_in_order() -> None:
    async def scenario() -> list[int]:
        bus = Bus()
        subscription = bus.subscribe()
        waiting = asyncio.create_task(subscription.wait())
        await asyncio.sleep(0)
        assert not waiting.done()  # nothing yet: it waits
        await bus.publish([frame(1), frame(2)])
        await asyncio.wait_for(waiting, 1)
        await bus.publish([frame(3)])
        return [f.id for f in subscription.backlog if f.id is not None]

    assert asyncio.run(scenario()) == [1, 2, 3]


def test_a_socket_that_falls_behind_overflows_without_holding_the_publisher_or_the_others() -> None:
    async def scenario() -> None:
        bus = Bus()
        slow, fast = bus.subscribe(), bus.subscribe()
        for n in range(1, QUEUE_LIMIT + 50):
            await bus.publish([frame(n)])
            fast.backlog.clear()  # the fast socket keeps up
        assert slow.overflowed and len(slow.backlog) == QUEUE_LIMIT
        assert not fast.overflowed
        await asyncio.wait_for(slow.wait(), 1)  # the forwarder is told at once, to close with 4000

    asyncio.run(scenario())


def test_the_end_of_a_socket_wakes_its_forwarder_and_unsubscribing_stops_delivery() -> None:
    async def scenario() -> None:
        bus = Bus()
        subscription = bus.subscribe()
        waiting = asyncio.create_task(subscription.wait())
        await asyncio.sleep(0)
        subscription.end()
        await asyncio.wait_for(waiting, 1)
        assert subscription.ended
        bus.unsubscribe(subscription)
        await bus.publish([frame(1)])
        assert not subscription.backlog

    asyncio.run(scenario())
