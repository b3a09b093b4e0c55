"""The admin endpoint (beyond ALB): target health, the active configuration, reload.

It listens where ``admin:`` says (127.0.0.1:9900 unless told otherwise), never on a
data-plane port, and speaks plain HTTP/1.1 through the same codec as the listeners.

* ``GET /``: the status page (listeners, target health, live request and error rates);
  ``GET /status.json`` is what it polls.
* ``GET /metrics``: Prometheus metrics named after ALB's CloudWatch metrics
  (:mod:`albatross.observe.metrics`).
* ``GET /healthz``: ``ok`` while the balancer runs (for a supervisor's liveness check).
* ``GET /targets``: every target group's targets with ALB's DescribeTargetHealth fields
  (state, reason, description) in snake_case, plus in-flight requests; draining targets are
  listed under the group they left until their deregistration completes.
* ``GET /config``: which configuration serves: file, SHA-256, generation, load time and the
  outcome of the last reload.
* ``POST /reload``: reload the configuration file now; answers when the reload is done:
  ``200`` with the new generation, or ``422`` with the reason the running one was kept.

Anyone who can reach the endpoint can read target health and trigger a reload of the
configured file (nothing else), which is why it stays on loopback by default.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from albatross import __version__
from albatross.http.exchange import App, Handler, Responder
from albatross.http.messages import SERVER, Headers, Request, Response
from albatross.observe import metrics
from albatross.server import status

if TYPE_CHECKING:
    from albatross.server.lifecycle import Server

_JSON = (b"Content-Type", b"application/json")
_NO_STORE = (b"Cache-Control", b"no-store")


def _json(status: int, data: object) -> Response:
    body = json.dumps(data, indent=2, sort_keys=False).encode() + b"\n"
    return Response(status, [(b"Server", SERVER), _JSON, _NO_STORE], body)


def _text(status: int, text: str, extra: Headers | None = None) -> Response:
    return Response(status, [(b"Server", SERVER), (b"Content-Type", b"text/plain; charset=utf-8"), _NO_STORE,
                             *(extra or ())], text.encode())


def target_health(server: Server) -> dict[str, object]:
    """The ``GET /targets`` document."""
    groups: dict[str, list[dict[str, object]]] = {name: [] for name in server.plan.groups}
    for name, group in server.plan.groups.items():
        groups[name] = [t.describe() for t in group.targets]
    for target in server.draining:
        groups.setdefault(target.group, []).append(target.describe())
    return {"target_groups": [{"name": name, "target_health_descriptions": targets}
                              for name, targets in groups.items()]}


def config_identity(server: Server) -> dict[str, object]:
    plan = server.plan
    return {"source": plan.source, "sha256": plan.digest, "generation": server.generation,
            "loaded_at": server.loaded_at, "version": __version__,
            "last_reload": server.last_reload.as_dict() if server.last_reload is not None else None}


def _metrics(server: Server) -> Response:
    return Response(200, [(b"Server", SERVER), (b"Content-Type", metrics.CONTENT_TYPE), _NO_STORE],
                    metrics.render(server))


_GET = {
    b"/": lambda server: Response(200, [(b"Server", SERVER), (b"Content-Type", b"text/html; charset=utf-8"),
                                        _NO_STORE], status.page(server)),
    b"/status.json": lambda server: Response(200, [(b"Server", SERVER), _JSON, _NO_STORE], status.status_json(server)),
    b"/metrics": _metrics,
    b"/healthz": lambda server: _text(200, "ok\n"),
    b"/targets": lambda server: _json(200, target_health(server)),
    b"/config": lambda server: _json(200, config_identity(server)),
}


class _Answer(Handler):
    """Answer once the request is complete: at once, or when a reload has finished."""

    __slots__ = ("server", "request", "responder", "gone")

    def __init__(self, server: Server, request: Request, responder: Responder) -> None:
        self.server = server
        self.request = request
        self.responder = responder
        self.gone = False

    def client_gone(self) -> None:
        self.gone = True

    def end(self, trailers: Headers | None = None) -> None:
        path = self.request.target.partition(b"?")[0]
        method = self.request.method
        if path == b"/reload":
            if method != b"POST":
                self._send(_text(405, "use POST /reload\n", [(b"Allow", b"POST")]))
                return
            task = asyncio.get_running_loop().create_task(self.server.reload())
            task.add_done_callback(self._reloaded)
            return
        page = _GET.get(path)
        if page is None:
            self._send(_json(404, {"error": f"no such admin resource: {path.decode('latin-1')}",
                                   "resources": ["/", "/status.json", "/metrics", "/healthz", "/targets", "/config",
                                                 "/reload (POST)"]}))
        elif method not in (b"GET", b"HEAD"):
            self._send(_text(405, "use GET\n", [(b"Allow", b"GET, HEAD")]))
        else:
            self._send(page(self.server))

    def _reloaded(self, task: asyncio.Task) -> None:  # type: ignore[type-arg]
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._send(_json(500, {"ok": False, "message": f"internal error: {exc!r}"}))
            return
        result = task.result()
        self._send(_json(200 if result.ok else 422, result.as_dict()))

    def _send(self, response: Response) -> None:
        if self.gone:
            return
        r = self.responder
        head_only = self.request.method == b"HEAD"
        r.send_head(response.status, response.headers, content_length=len(response.body), head_only=head_only)
        if not head_only:
            r.send_body(response.body)
        r.end()


def admin_app(server: Server) -> App:
    def app(request: Request, responder: Responder) -> Handler:
        return _Answer(server, request, responder)

    return app
