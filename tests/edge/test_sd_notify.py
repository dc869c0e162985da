"""systemd's notify protocol over a real Unix datagram socket, as systemd listens on $NOTIFY_SOCKET."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.sd_notify import SystemdNotifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield sock, path
    sock.close()


def received(sock: socket.socket) -> list[str]:
    got = []
    sock.settimeout(0.2)
    try:
        while True:
            got.append(sock.recv(4096).decode())
    except TimeoutError:
        return got


def test_ready_status_and_a_rate_limited_watchdog_reach_the_socket(
    listener: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "60000000")  # WatchdogSec=60: ping at most every 30 s
    notifier = SystemdNotifier.from_environment()
    assert notifier.enabled
    assert notifier.ready() and notifier.status("update_model streetwatch-det 1.3.0:\ndownload")
    assert notifier.watchdog() is True
    assert [notifier.watchdog() for _ in range(100)] == [False] * 100  # every frame calls it
    assert received(sock) == ["READY=1", "STATUS=update_model streetwatch-det 1.3.0: download", "WATCHDOG=1"]


def test_outside_systemd_or_with_the_socket_gone_nothing_fails(tmp_path: Path) -> None:
    assert SystemdNotifier(None).ready() is False
    gone = SystemdNotifier(str(tmp_path / "no-such.sock"))
    assert gone.enabled and gone.ready() is False and gone.watchdog() is False
