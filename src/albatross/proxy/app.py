"""The application a listener runs: its default action, applied to every request."""

from __future__ import annotations

from albatross.http.exchange import App, Handler, Responder
from albatross.http.forwarding import ClientSide, ForwardingPolicy
from albatross.http.messages import Request
from albatross.proxy.forward import Forward, TargetGroupRuntime


def forward_app(group: TargetGroupRuntime, policy: ForwardingPolicy, *, scheme: str) -> App:
    """Forward every request to ``group`` (a listener's default forward action)."""

    def app(request: Request, responder: Responder) -> Handler:
        conn = request.connection
        if conn is None:
            client = ClientSide("-", 0, 0, scheme)
        else:
            client = conn.forwarding
            if client is None:  # once per client connection
                client = conn.forwarding = ClientSide(conn.client_ip, conn.client_port, conn.local_port, scheme)
        return Forward(request, responder, group, policy, client)

    return app
