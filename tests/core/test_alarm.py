"""The one process deadline the poll and the hook share."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from ood_k8s.core.alarm import Alarm


class Late(Exception):
    pass


def test_a_blocking_read_is_interrupted_at_the_deadline() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname())  # accepted by the kernel, never answered
    started = time.monotonic()
    alarm = Alarm(0.05, Late)
    with pytest.raises(Late), alarm:
        client.recv(1)
    assert alarm.expired and time.monotonic() - started < 2
    client.close()
    server.close()


def test_a_disarmed_alarm_never_fires() -> None:
    alarm = Alarm(0.02, Late)
    with alarm:
        pass
    time.sleep(0.05)  # the bounded wait in which a stray SIGALRM would have raised
    assert not alarm.expired


def test_outside_the_main_thread_it_does_nothing() -> None:
    seen: list[bool] = []

    def worker() -> None:
        with Alarm(0.01, Late) as alarm:
            seen.append(alarm._armed)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(5)
    assert seen == [False]
