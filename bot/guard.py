"""Guard: the HTTP edge in front of the chat page — only the routes the page uses, small bodies, slow guessing.

The page has no file input, yet Gradio serves an upload route (and media streams, file routes, run history,
...) that anyone on the network — or any web page a staff member opens, since a multipart POST needs no CORS
preflight — could use to fill the server's disk. `Guard` is an ASGI middleware that:

- answers 404 for every route the page and its API do not use (`ALLOWED`), uploads included;
- answers 413 for a request body over `Limits.max_body` bytes, before the app reads any of it;
- slows repeated failed logins from one client address (429 with Retry-After, the wait doubling with each
  failure) and logs each failure with the address only, never what was typed;
- fills the optional arguments a positional API call (`POST /gradio_api/call/ask {"data": ["..."]}`) leaves
  out with their defaults: Gradio itself fails such a call although the argument is optional.

`RateLimit` bounds how often one session may use an API function (the `feedback` API), and `session_id`
keeps a client-chosen session id that is stored with feedback to a short, plain form.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["ALLOWED", "Guard", "Limits", "LoginThrottle", "RateLimit", "session_id"]

logger = logging.getLogger(__name__)

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

#: Every route the page (in a browser) and its API clients (gradio_client, curl) use; all else is 404.
ALLOWED = re.compile(
    r"/(?:"
    r"|config/?|theme\.css|robots\.txt|favicon\.ico|manifest\.json|login/?|logout/?"
    r"|(?:assets|static|svelte)/[^?]*"
    r"|gradio_api/(?:"
    r"info/?|openapi\.json|config/?|startup-events|app_id/?|user/?|login_check/?|token/?"
    r"|queue/(?:join|data)/?|heartbeat/[^/]+|cancel/?|reset/?"
    r"|(?:call(?:/v2)?|run|api)/[A-Za-z0-9_\-]+(?:/[A-Za-z0-9_\-]+)?/?"
    r"))"
)
LOGIN_PATHS = ("/login", "/login/")
#: The positional API routes: `data` is a list of the function's arguments in order.
_POSITIONAL = re.compile(r"/gradio_api/(?:call|run|api)/([A-Za-z0-9_\-]+)/?")
#: A session id as Gradio's page (base-36 random) and gradio_client (uuid4) make them.
_SESSION = re.compile(r"[A-Za-z0-9_-]{1,64}")


def session_id(value: object) -> str:
    """A client-chosen session id as it may be stored: kept when plain and short, else replaced by its digest."""
    if not isinstance(value, str) or not value:
        return ""
    if _SESSION.fullmatch(value):
        return value
    return "h-" + hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:30]


@dataclass(frozen=True, slots=True)
class Limits:
    """The guard's bounds; the defaults suit an intranet page of a few hundred staff."""

    max_body: int = 256_000  # bytes: a question is at most a few kB of JSON
    login_free: int = 5  # failed logins from one address before it must wait
    login_delay: float = 2.0  # seconds of the first wait; it doubles with each further failure
    login_max_delay: float = 300.0
    login_forget: float = 900.0  # seconds without a failure after which an address starts afresh
    feedback_per_minute: int = 20  # feedback API calls per session
    feedback_per_minute_per_address: int = 120  # ... and per client address (API clients choose session ids)


class LoginThrottle:
    """Failed logins per client address; after `free` of them each attempt waits a doubling delay."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic, max_addresses: int = 10_000):
        self.limits, self.clock, self.max_addresses = limits, clock, max_addresses
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()  # address -> (count, last failure)
        self._lock = threading.Lock()

    def _count(self, address: str, now: float) -> tuple[int, float]:
        count, last = self._failures.get(address, (0, now))
        return (0, now) if now - last > self.limits.login_forget else (count, last)

    def wait(self, address: str) -> float:
        """Seconds before `address` may try again (0: now)."""
        with self._lock:
            now = self.clock()
            count, last = self._count(address, now)
            if count < self.limits.login_free:
                return 0.0
            delay = min(self.limits.login_delay * 2 ** (count - self.limits.login_free), self.limits.login_max_delay)
            return max(0.0, last + delay - now)

    def failed(self, address: str) -> int:
        """Record a failure; returns how many in a row."""
        with self._lock:
            now = self.clock()
            count = self._count(address, now)[0] + 1
            self._failures[address] = (count, now)
            self._failures.move_to_end(address)
            while len(self._failures) > self.max_addresses:  # bounded memory whatever the number of addresses
                self._failures.popitem(last=False)
            return count

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)


class RateLimit:
    """At most `count` calls per `seconds` for each key (a sliding window); bounded in keys."""

    def __init__(self, count: int, seconds: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 10_000) -> None:
        self.count, self.seconds, self.clock, self.max_keys = count, seconds, clock, max_keys
        self._calls: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """True (and counted) when `key` is under its limit, else False."""
        with self._lock:
            now = self.clock()
            calls = self._calls.setdefault(key, deque())
            self._calls.move_to_end(key)
            while calls and now - calls[0] >= self.seconds:
                calls.popleft()
            if len(calls) >= self.count:
                return False
            calls.append(now)
            while len(self._calls) > self.max_keys:
                self._calls.popitem(last=False)
            return True


class Guard:
    """ASGI middleware in front of the Gradio app: allowed routes, bounded bodies, throttled logins."""

    def __init__(self, app: Callable, limits: Limits | None = None,
                 defaults: dict[str, list] | None = None) -> None:
        """`defaults`: API name -> the default of each argument, to fill what a positional call omits."""
        self.app = app
        self.limits = limits or Limits()
        self.defaults = defaults or {}
        self.logins = LoginThrottle(self.limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):  # lifespan
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if not ALLOWED.fullmatch(path):
            logger.info("refused %s %s: not a route of this page", scope.get("method", "WS"), path[:100])
            await _reply(scope, send, 404, "Not Found")
            return
        if scope["type"] == "websocket":
            await _reply(scope, send, 404, "Not Found")
            return
        body = await _read_body(scope, receive, self.limits.max_body)
        if body is None:
            await _reply(scope, send, 413, f"Request body over {self.limits.max_body:,} bytes")
            return
        positional = _POSITIONAL.fullmatch(path)
        if positional and positional.group(1) in self.defaults and scope.get("method") == "POST":
            filled = _fill_defaults(body, self.defaults[positional.group(1)])
            if filled is not body:
                headers = [(k, v) for k, v in scope.get("headers", []) if k != b"content-length"]
                scope = {**scope, "headers": [*headers, (b"content-length", str(len(filled)).encode())]}
                body = filled
        replay = _replay(body, receive)
        if scope.get("method") == "POST" and path in LOGIN_PATHS:
            await self._login(scope, replay, send)
        else:
            await self.app(scope, replay, send)

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        address = (scope.get("client") or ("unknown", 0))[0]
        wait = self.logins.wait(address)
        if wait > 0:
            await _reply(scope, send, 429, f"Too many failed logins from this address: try again in {wait:.0f} s",
                         headers=[(b"retry-after", str(max(1, round(wait))).encode())])
            return
        status: list[int] = []

        async def watch(message: dict) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, receive, watch)
        if status and status[0] < 300:
            self.logins.succeeded(address)
        elif status and status[0] < 500:
            count = self.logins.failed(address)
            logger.warning("failed login from %s (%d in a row)", address, count)


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None as soon as it is (or says it will be) over `limit` bytes."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                if int(value) > limit:
                    return None
            except ValueError:
                return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away; the app sees an empty body and the disconnect after it
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _fill_defaults(body: bytes, defaults: list) -> bytes:
    """The JSON body with `data` padded by the omitted arguments' defaults; anything else unchanged."""
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):
        return body  # Gradio answers it with its own 422
    data = request.get("data") if isinstance(request, dict) else None
    if not isinstance(data, list) or len(data) >= len(defaults):
        return body
    request["data"] = data + defaults[len(data):]
    return json.dumps(request).encode()


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` giving the app the body already read, then whatever the client sends next (disconnect)."""
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _reply(scope: Scope, send: Send, status: int, detail: str,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
