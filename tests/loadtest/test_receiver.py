"""The benchmark's webhook receiver: 204 to every POST on kept-open connections, and a count."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest


@pytest.fixture
def receiver() -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "loadtest.receiver"], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    port = json.loads(process.stdout.readline())["port"]
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.communicate(timeout=10)


def test_every_post_is_answered_204_and_counted(
    receiver: tuple[subprocess.Popen[str], str],
) -> None:
    _, url = receiver
    with httpx.Client(timeout=10) as client:
        answers = [client.post(f"{url}/hooks", content=b'{"n": %d}' % n) for n in range(5)]
        chunked = client.post(f"{url}/hooks", content=iter([b'{"n":', b" 5}"]))
        count = client.get(f"{url}/count")
    assert [a.status_code for a in answers] == [204] * 5
    assert chunked.status_code == 204
    assert count.json() == {"requests": 6}


def test_requests_on_one_connection_are_answered_in_turn(
    receiver: tuple[subprocess.Popen[str], str],
) -> None:
    _, url = receiver
    port = int(url.rpartition(":")[2])
    post = b"POST /hooks HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}"
    count = b"GET /count HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(post + post + count)
        answer = b""
        while chunk := conn.recv(4096):  # the receiver closes after the last, as asked
            answer += chunk
    assert answer.count(b"HTTP/1.1 204 No Content\r\n") == 2
    assert answer.endswith(b'{"requests": 2}')


def test_it_prints_its_count_when_stopped(receiver: tuple[subprocess.Popen[str], str]) -> None:
    process, url = receiver
    assert httpx.post(f"{url}/hooks", content=b"{}", timeout=10).status_code == 204
    process.terminate()
    out, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    assert json.loads(out.strip().splitlines()[-1]) == {"requests": 1}
