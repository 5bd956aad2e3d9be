"""One deadline for a whole one-shot process: SIGALRM raises in the main thread, wherever it waits.

A hung peer (a socket that accepts and never answers) would otherwise hold a poll or a login for every
retry's timeout.  The signal interrupts the blocking read, so the error reaches the code that can still
answer or roll back.  Used by the poll (:mod:`ood_k8s.ood.deadline`, which adds a watchdog for a
process stuck where no signal handler runs) and by the hook (:mod:`ood_k8s.users.hook`).
"""

import _signal  # signal's C core: the signal module builds enums at import (~1 ms of every process)
from typing import Any, Callable


class Alarm:
    """``arm()`` / ``disarm()``, or ``with Alarm(...)``: after ``seconds`` the main thread gets ``error()``
    raised.  Outside the main thread (tests calling an entry point from a worker) it does nothing."""

    def __init__(self, seconds: float, error: Callable[[], BaseException]) -> None:
        self.seconds = max(float(seconds), 0.001)
        self.error = error
        self.expired = False
        self._previous: Any = None
        self._armed = False

    def _expire(self, signum: int, frame: Any) -> None:
        _signal.setitimer(_signal.ITIMER_REAL, 0)
        self.expired = True
        raise self.error()

    def arm(self) -> "Alarm":
        try:
            self._previous = _signal.signal(_signal.SIGALRM, self._expire)
        except ValueError:  # not the main thread
            return self
        self._armed = True
        _signal.setitimer(_signal.ITIMER_REAL, self.seconds)
        return self

    def disarm(self) -> None:
        """No SIGALRM after this returns."""
        if self._armed:
            _signal.setitimer(_signal.ITIMER_REAL, 0)
            _signal.signal(_signal.SIGALRM, self._previous)
            self._armed = False

    def __enter__(self) -> "Alarm":
        return self.arm()

    def __exit__(self, *exc: Any) -> None:
        self.disarm()
