# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""A whole-process time limit for one ``ood-k8s-psij`` verb (REFERENCE §10).

OOD's psij.rb runs its subprocess with no timeout: whatever this process waits, one dashboard page
waits.  A single budget covers every wait of the verb -- connecting, TLS, each request and its
retries and back-off sleeps, a token refresh -- in two stages:

1. at ``seconds``, SIGALRM raises :class:`~ood_k8s.core.errors.Unavailable` in the main thread, so
   the verb can answer (a poll says ``undetermined`` with the reason) or clean up (a submit rolls
   back what it created);
2. ``grace`` seconds later a watchdog thread ends the process with its last words, in case the
   main thread is stuck where no signal handler runs (a C call such as name resolution that
   retries its own interrupted waits) or the clean-up itself hangs.

Output is owned once: whichever of the main thread and the watchdog takes :meth:`Deadline.own_output`
first writes the answer; the other never writes.
"""

import _thread  # threading's primitives without importing threading (~2 ms of every poll)
import os
import time
from typing import Callable, NamedTuple, Optional

from ood_k8s.core.alarm import Alarm
from ood_k8s.core.errors import Unavailable


class LastWords(NamedTuple):
    """What the process says when the watchdog ends it."""

    stdout: str
    stderr: str
    code: int


class Deadline:
    """Arm with :meth:`start`; disarm with :meth:`stop`; take the output with :meth:`own_output`.

    ``last_words(message)`` gives what the watchdog writes (``message`` says what ran out of time).
    """

    def __init__(self, seconds: float, what: str, last_words: Callable[[str], LastWords], *,
                 grace: Optional[float] = None) -> None:
        self.seconds = float(seconds)
        self.what = what  # "the cluster", as in "... did not answer within 5 s"
        self.grace = min(2.0, self.seconds) if grace is None else grace
        self.last_words = last_words
        self._output = _thread.allocate_lock()
        self._alarm = Alarm(self.seconds, lambda: Unavailable(
            self.message(), "the cluster may be overloaded or unreachable; try again in a minute"))

    def message(self) -> str:
        return f"{self.what} did not answer within {self.seconds:g} s"

    @property
    def expired(self) -> bool:
        return self._alarm.expired

    def start(self) -> None:
        self._alarm.arm()
        _thread.start_new_thread(self._watchdog, ())

    def stop(self) -> None:
        """No SIGALRM after this returns (the watchdog stays: it still guards writing the answer)."""
        self._alarm.disarm()

    def own_output(self) -> None:
        """Take the right to answer; blocks for good if the watchdog took it (it is ending the process)."""
        self._output.acquire()

    def _watchdog(self) -> None:
        time.sleep(self.seconds + self.grace)
        if not self._output.acquire(False):
            return  # the main thread is answering
        words = self.last_words(self.message())
        for fd, text in ((1, words.stdout), (2, words.stderr)):
            data = text.encode("utf-8", "replace")
            while data:
                try:
                    data = data[os.write(fd, data):]
                except OSError:
                    break
        os._exit(words.code)
