"""The web UI's login check, with failed attempts throttled per user name.

Gradio calls `Login(user, password)` for each attempt. After `FREE_FAILURES` wrong passwords for a
name, that name is locked for a time that doubles with every further failure (up to `MAX_LOCK_SECONDS`);
while locked, every attempt is refused with HTTP 429 and says how long to wait. A success clears the count.
"""

from __future__ import annotations

import hmac
import threading
import time

FREE_FAILURES = 5
FIRST_LOCK_SECONDS = 2.0
MAX_LOCK_SECONDS = 300.0
MAX_TRACKED = 10_000  # names with recent failures kept in memory; the oldest are forgotten beyond this


class TooManyFailures(Exception):
    """A login attempt for a name that is locked after repeated failures."""

    def __init__(self, wait: float):
        super().__init__(f"Too many failed logins: wait {wait:.0f} s and try again.")
        self.wait = wait


class Login:
    def __init__(self, user: str, password: str, clock=time.monotonic):
        self._user, self._password, self._clock = user, password, clock
        self._failures: dict[str, tuple[int, float]] = {}  # name -> (failures, locked until)
        self._lock = threading.Lock()

    def check(self, user: str, password: str) -> bool:
        """True for the right user and password; raises TooManyFailures while `user` is locked."""
        now = self._clock()
        with self._lock:
            failures, until = self._failures.get(user, (0, 0.0))
            if now < until:
                raise TooManyFailures(until - now)
            ok = hmac.compare_digest(user.encode(), self._user.encode()) & hmac.compare_digest(
                password.encode(), self._password.encode()
            )
            if ok:
                self._failures.pop(user, None)
                return True
            failures += 1
            lock = 0.0 if failures < FREE_FAILURES else FIRST_LOCK_SECONDS * 2 ** min(failures - FREE_FAILURES, 20)
            self._failures[user] = (failures, now + min(lock, MAX_LOCK_SECONDS))
            if len(self._failures) > MAX_TRACKED:
                self._failures.pop(next(iter(self._failures)))
            return False

    def __call__(self, user: str, password: str) -> bool:
        """Gradio's auth callable: a locked name gets HTTP 429 with the wait, not 'Incorrect credentials'."""
        from fastapi import HTTPException

        try:
            return self.check(user, password)
        except TooManyFailures as exc:
            raise HTTPException(status_code=429, detail=str(exc)) from None
