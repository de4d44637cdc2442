"""Login throttling, per client address and per account, kept in this process's memory.

The scheme (docs/SECURITY.md explains it for people):

- **Per address.** Every failed sign-in is counted against the client address it came from.
  After ADDRESS_FREE failures within WINDOW the address is refused (429) for a while that
  doubles with each further failure, up to MAX_LOCK; its password guesses are not even checked.
  An address may also have only IN_FLIGHT_PER_ADDRESS checks running at once, so a burst of
  parallel requests cannot slip past the count.
- **Per account.** Failures are also counted against the email typed, whether or not an account
  has it (so a lock says nothing about which emails exist). After ACCOUNT_FREE failures the
  account is locked the same way, but the lock only holds for addresses that have failed
  within WINDOW. A client that has not been failing (the manager at her desk) still has her
  password checked, and a correct one signs her in and clears the account's count. A stranger
  flooding one account therefore locks out only himself.
- A distributed guesser with many clean addresses gets one guess per address per lock; the
  argon2 cost and the per-address counts bound that, and strong passwords are the answer to it.

Counts live in memory: each app instance keeps its own, and a restart forgets them. Entries
older than WINDOW are dropped, and the tables are capped so a flood cannot exhaust memory.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

WINDOW = 15 * 60.0  # seconds a failure is remembered
ACCOUNT_FREE = 5  # failures on one email before it locks (for failing addresses)
ADDRESS_FREE = 10  # failures from one address before it is refused outright
IN_FLIGHT_PER_ADDRESS = 2
FIRST_LOCK = 30.0
MAX_LOCK = 15 * 60.0
MAX_ENTRIES = 100_000


@dataclass
class _Record:
    failures: deque[float] = field(default_factory=deque)  # monotonic times, oldest first
    locked_until: float = 0.0

    def prune(self, now: float) -> None:
        cutoff = now - WINDOW
        while self.failures and self.failures[0] < cutoff:
            self.failures.popleft()

    def fail(self, now: float, free: int) -> None:
        self.prune(now)
        self.failures.append(now)
        over = len(self.failures) - free
        if over >= 0:
            self.locked_until = now + min(FIRST_LOCK * 2**over, MAX_LOCK)


@dataclass(frozen=True)
class Refusal:
    retry_after: float  # seconds


class LoginThrottle:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._addresses: dict[str, _Record] = {}
        self._accounts: dict[str, _Record] = {}
        self._in_flight: dict[str, int] = {}

    def _record(self, table: dict[str, _Record], key: str) -> _Record:
        record = table.get(key)
        if record is None:
            if len(table) >= MAX_ENTRIES:
                self._sweep(table)
            record = table[key] = _Record()
        return record

    def _sweep(self, table: dict[str, _Record]) -> None:
        now = self._clock()
        for key in list(table):
            record = table[key]
            record.prune(now)
            if not record.failures and record.locked_until <= now:
                del table[key]
        while len(table) >= MAX_ENTRIES:  # still full of live entries: forget the oldest
            del table[next(iter(table))]

    def _failing(self, address: str, now: float) -> bool:
        record = self._addresses.get(address)
        if record is None:
            return False
        record.prune(now)
        return bool(record.failures)

    def check(self, address: str, email: str) -> Refusal | None:
        """None if this attempt may have its password checked (then call `begin`), else why not."""
        now = self._clock()
        by_address = self._addresses.get(address)
        if by_address is not None and by_address.locked_until > now:
            return Refusal(by_address.locked_until - now)
        if self._in_flight.get(address, 0) >= IN_FLIGHT_PER_ADDRESS:
            return Refusal(1.0)
        by_account = self._accounts.get(email)
        if by_account is not None and by_account.locked_until > now and self._failing(address, now):
            return Refusal(by_account.locked_until - now)
        return None

    def in_flight(self, address: str) -> int:
        """Password checks running now for this address."""
        return self._in_flight.get(address, 0)

    def begin(self, address: str) -> None:
        self._in_flight[address] = self._in_flight.get(address, 0) + 1

    def end(self, address: str) -> None:
        left = self._in_flight.get(address, 1) - 1
        if left > 0:
            self._in_flight[address] = left
        else:
            self._in_flight.pop(address, None)

    def failed(self, address: str, email: str) -> Refusal | None:
        """Counts a wrong password; returns the refusal now in force for this client, if any."""
        now = self._clock()
        self._record(self._addresses, address).fail(now, ADDRESS_FREE)
        self._record(self._accounts, email).fail(now, ACCOUNT_FREE)
        return self.check(address, email)

    def succeeded(self, address: str, email: str) -> None:
        """A correct password: the account's count starts again (the address keeps its own)."""
        self._accounts.pop(email, None)
