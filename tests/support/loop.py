"""asyncio.run for test code that may already sit inside an event loop.

A test module's Chromium (Playwright's sync API) keeps an event loop running on the main thread for
as long as it is open, and asyncio.run refuses to start under a running loop: there the coroutine
runs on a thread of its own instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """function(*args, **kwargs); on a thread of its own if an event loop runs on this one (for
    functions that call asyncio.run inside, such as inbox.db.migrate)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return function(*args, **kwargs)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args, **kwargs).result()


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(coroutine), wherever it is called from."""
    return call(asyncio.run, coroutine)
