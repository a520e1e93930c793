"""Childserver: the chat page's server in a child process, for the load test and the timed HTTP bench.

Both measure the server as staff meet it: `faqbot serve` in its own process (its own interpreter, encoder workers
and feedback store), reached over loopback HTTP. This module starts one (`serving`, or `SERVER_SCRIPT` for a caller
that times the start itself), waits until its page answers (`wait_ready`) and stops it (`stop`).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator

from .bench_procs import child_env
from .errors import BotError
from .settings import Settings

__all__ = ["SERVER_SCRIPT", "free_port", "serving", "stop", "wait_ready"]

# A server like `faqbot serve`, in its own process: data, index, feedback target, port.
SERVER_SCRIPT = r"""
import sys
from pathlib import Path
from bot.settings import Settings
from bot.web import serve
db = sys.argv[3] if sys.argv[3].startswith("postgresql") else Path(sys.argv[3])
serve(Settings(data_dir=Path(sys.argv[1]), index_dir=Path(sys.argv[2]), feedback_db=db), "127.0.0.1", int(sys.argv[4]))
"""


@contextlib.contextmanager
def serving(settings: Settings, db: str, port: int | None = None, timeout: float = 300.0) -> Iterator[str]:
    """A server like `faqbot serve` in its own process on `settings`' index; yields its URL, stops it after."""
    port = port or free_port()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([sys.executable, "-c", SERVER_SCRIPT, str(settings.data_dir), str(settings.index_dir),
                                 db, str(port)], stdout=log, stderr=subprocess.STDOUT, env=child_env())
        url = f"http://127.0.0.1:{port}/"
        try:
            wait_ready(url, proc, timeout, log)
            yield url
        finally:
            stop(proc, 30)


def stop(proc: subprocess.Popen, timeout: float) -> None:
    """Stop a server process: ask it to end, kill it if it has not within `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_ready(url: str, proc: subprocess.Popen, timeout: float, log) -> float:
    """Seconds until `url` answers; raises `BotError` with the server's last lines if it dies or times out."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        if proc.poll() is not None:
            break
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                return time.perf_counter() - began
        time.sleep(0.1)
    log.seek(0)
    tail = " | ".join(log.read().decode(errors="replace").strip().splitlines()[-5:])
    raise BotError(f"the page's server started at {url} for a load test or bench did not start "
                   f"(exit {proc.poll()}): {tail}")


def free_port() -> int:
    """A free TCP port on the loopback interface (the load test, the timed HTTP bench and the tests' servers)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
