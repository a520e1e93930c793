"""Bench, HTTP: a page server in its own process, timed until `/` answers (`server_ready_s`), then round trips
through its `ask` API by `gradio_client` and by plain HTTP, alternating which goes first.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import time
import urllib.request

import psutil

from .bench_latency import ms, pct
from .bench_procs import child_env
from .childserver import SERVER_SCRIPT, free_port, stop
from .errors import BotError
from .settings import Settings


def measure_http(settings: Settings, queries: list[str]) -> dict:
    """Round trips through the page's `ask` API with a warm server in its own process."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryFile() as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", SERVER_SCRIPT, str(settings.data_dir), str(settings.index_dir),
                                 str(settings.feedback_db), str(port)], stdout=log, stderr=subprocess.STDOUT,
                                env=child_env())
        try:
            return _time_server(proc, url, t0, queries)
        except Exception as err:  # noqa: BLE001 - a server can fail to start in any way; report, don't crash
            log.seek(0)
            tail = " | ".join(log.read().decode(errors="replace").strip().splitlines()[-4:])
            return {"skipped": f"http: the page could not be timed ({type(err).__name__}: {err}); server log: {tail}"}
        finally:
            stop(proc, 15)


def _time_server(proc: subprocess.Popen, url: str, t0: float, queries: list[str]) -> dict:
    deadline = t0 + 180
    while True:
        if proc.poll() is not None:
            raise BotError(f"the server exited with status {proc.returncode} before answering")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                break
        if time.perf_counter() > deadline:
            raise BotError("the server did not answer within 180 s")
        time.sleep(0.1)
    ready_s = time.perf_counter() - t0
    from gradio_client import Client

    client = Client(url, verbose=False)
    first_s = ms(lambda: client.predict(queries[0], api_name="/ask")) / 1000
    for q in queries[:3]:
        client.predict(q, api_name="/ask")
        _rest_ask(url, q)
    times: dict[str, list[float]] = {"client": [], "rest": []}
    for i, q in enumerate(queries):  # alternate who goes first, as in-process
        calls = [("client", lambda q=q: client.predict(q, api_name="/ask")), ("rest", lambda q=q: _rest_ask(url, q))]
        for name, call in calls[i % 2:] + calls[:i % 2]:
            times[name].append(ms(call))
    rss = psutil.Process(proc.pid).memory_info().rss / 2**20
    return {"server_ready_s": round(ready_s, 2), "first_answer_s": round(first_s, 3),
            "p50_ms": pct(times["client"])[50], "p95_ms": pct(times["client"])[95],
            "rest_p50_ms": pct(times["rest"])[50], "rest_p95_ms": pct(times["rest"])[95],
            "queries": len(queries), "server_rss_mb": round(rss, 1),
            "how": "p50/p95: gradio_client Client.predict(q, api_name='/ask'); rest_*: the same endpoint over "
                   "plain HTTP (POST gradio_api/call/ask, then GET its result stream)"}


def _rest_ask(url: str, question: str) -> str:
    """One question through the page's `ask` API without gradio_client: what any HTTP client pays."""
    request = urllib.request.Request(f"{url}gradio_api/call/ask", data=json.dumps({"data": [question, None]}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        event = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/ask/{event}", timeout=120) as response:
        body = response.read().decode()
    if "event: complete" not in body:
        raise BotError(f"the ask API replied {body[:160]!r}")
    return body
