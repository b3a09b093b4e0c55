"""The ``albatross`` command.

* ``albatross demo``: an HTTPS listener (and optionally a plain HTTP one) on 127.0.0.1 with
  a self-signed certificate made on first run, serving the built-in page. Flags cover what
  the TLS front end offers until configuration files arrive.
* ``albatross tls-keys rotate FILE``: prepend a fresh session-ticket key, keep three.
* ``albatross version``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from albatross import __version__
from albatross.errors import AlbatrossError

log = logging.getLogger("albatross")


def _state_dir() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "albatross")


def _add_demo(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="run an HTTPS listener with a self-signed certificate and the built-in page")
    p.add_argument("--address", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--https-port", type=int, default=8443, help="HTTPS port (0 picks a free one; default 8443)")
    p.add_argument("--http-port", type=int, default=None, help="also serve plain HTTP/1.1 on this port")
    p.add_argument("--state-dir", default=None, help=f"where the demo certificate is kept (default {_state_dir()})")
    p.add_argument("--policy", default=None, help="ALB security policy name (default ELBSecurityPolicy-TLS13-1-2-2021-06)")
    p.add_argument("--alpn", default="h2,http/1.1",
                   help="ALPN protocols in preference order; an empty value switches ALPN off (NPN stays)")
    p.add_argument("--no-http2", action="store_true", help="as routing.http2.enabled=false: never offer h2")
    p.add_argument("--certificate", nargs="+", action="append", metavar=("CERT", "KEY"),
                   help="CERT KEY [OCSP_DER]: a PEM chain, its key and optionally an OCSP response to staple; "
                        "repeat for more (the first is the default). Without it a self-signed pair is used")
    p.add_argument("--ticket-keys", default=None, help="shared session-ticket key file (see `tls-keys rotate`)")
    p.add_argument("--ticket-rotation", type=float, default=3600.0,
                   help="seconds between in-memory ticket key rotations (no key file)")
    p.add_argument("--ticket-lifetime", type=int, default=43200, help="session lifetime and ticket hint (s)")
    p.add_argument("--key-log", default=os.environ.get("SSLKEYLOGFILE") or None,
                   help="write an NSS key log (default: $SSLKEYLOGFILE); for diagnostics only")
    p.add_argument("--handshake-timeout", type=float, default=10.0)
    p.add_argument("--idle-timeout", type=float, default=60.0)
    p.add_argument("--client-keep-alive", type=float, default=3600.0)
    p.add_argument("--targets", type=int, default=2,
                   help="built-in demo targets behind the balancer (default 2); 0 answers every request with "
                        "the built-in page that shows what the client negotiated")
    p.add_argument("--no-uvloop", action="store_true", help="use the plain asyncio event loop")
    p.add_argument("--log-level", default="INFO")


def _certificates(args: argparse.Namespace) -> tuple:  # type: ignore[type-arg]
    from albatross.tls import CertificateSpec, self_signed
    from albatross.tls.certs import RSA

    if not args.certificate:
        state = args.state_dir or _state_dir()
        # ECDSA first (the default), RSA for clients without ECDSA: ALB's dual-certificate rule.
        return (self_signed(state), self_signed(state, key_type=RSA))
    specs = []
    for values in args.certificate:
        if len(values) not in (2, 3):
            raise AlbatrossError("--certificate takes CERT KEY [OCSP_DER]")
        specs.append(CertificateSpec(values[0], values[1], values[2] if len(values) == 3 else None))
    return tuple(specs)


def _demo(args: argparse.Namespace) -> int:
    from albatross.http.exchange import static
    from albatross.http.forwarding import ForwardingPolicy
    from albatross.proxy.app import forward_app
    from albatross.proxy.forward import Target, TargetGroupRuntime
    from albatross.server.app import page
    from albatross.server.demo_targets import start_target
    from albatross.server.upstream import TargetPool
    from albatross.server.lifecycle import Binding, Server
    from albatross.server.listener import Listener, ListenerSettings
    from albatross.server.loop import run
    from albatross.tls import DEFAULT_POLICY, ServerContext, TicketKeyRing, TLSSettings, open_key_log

    alpn = tuple(p.strip() for p in args.alpn.split(",") if p.strip())
    settings = TLSSettings(
        certificates=_certificates(args),
        policy=args.policy or DEFAULT_POLICY,
        alpn_policy=alpn,
        http2_enabled=not args.no_http2,
        ticket_lifetime_seconds=args.ticket_lifetime,
    )
    if args.key_log:
        open_key_log(args.key_log)
    ring = TicketKeyRing(args.ticket_keys, args.ticket_rotation, now=time.time())
    context = ServerContext(settings, ring, key_log=bool(args.key_log))
    listener_settings = ListenerSettings(args.handshake_timeout, args.idle_timeout, args.client_keep_alive)

    async def main() -> None:
        pools = []
        if args.targets > 0:
            group = TargetGroupRuntime("demo")
            for n in range(args.targets):
                server = await start_target(f"target-{n + 1}")
                port = server.sockets[0].getsockname()[1]
                print(f"albatross: demo target target-{n + 1} on 127.0.0.1 {port}", file=sys.stderr, flush=True)
                pool = TargetPool("127.0.0.1", port)
                pools.append(pool)
                group.targets.append(Target("127.0.0.1", port, pool))
            https_app = forward_app(group, ForwardingPolicy(), scheme="https")
            http_app = forward_app(group, ForwardingPolicy(), scheme="http")
        else:
            https_app = http_app = static(page)
        bindings = [Binding(Listener(https_app, listener_settings, context), args.address, args.https_port, "https")]
        if args.http_port is not None:
            bindings.append(Binding(Listener(http_app, listener_settings), args.address, args.http_port, "http"))
        await Server(bindings, pools=pools, idle_timeout=args.idle_timeout).run()

    run(main(), prefer_uvloop=not args.no_uvloop)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from albatross.config import load
    from albatross.server.lifecycle import Server
    from albatross.server.loop import run
    from albatross.server.plan import compile_plan
    from albatross.tls import open_key_log

    config = load(args.config)
    plan = compile_plan(config, args.config)
    if plan.key_log:
        open_key_log(plan.key_log)

    async def main() -> None:
        await Server(plan.bindings, pools=plan.pools, idle_timeout=plan.idle_timeout, targets=plan.targets).run()

    run(main(), prefer_uvloop=not args.no_uvloop)
    return 0


def _check(args: argparse.Namespace) -> int:
    """Validate a configuration (model and compilation: certificates, policies, rules) and print
    the plan: listeners, their rules in evaluation order, target groups."""
    from albatross.config import load
    from albatross.server.plan import compile_plan, describe

    config = load(args.config)
    compile_plan(config, args.config)  # loads certificates, compiles rules: every error surfaces here
    print(describe(config))
    print(f"{args.config}: OK")
    return 0


def _tls_keys(args: argparse.Namespace) -> int:
    from albatross.tls import rotate_key_file

    keys = rotate_key_file(args.file, keep=args.keep)
    print(f"{args.file}: {len(keys)} keys, encrypting with key name {keys[0][:16].hex()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="albatross", description="A load balancer in AWS ALB's own terms.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_demo(sub)
    serve = sub.add_parser("serve", help="run the load balancer described by a configuration file")
    serve.add_argument("config", help="YAML (or .json) configuration in ALB's terms")
    serve.add_argument("--no-uvloop", action="store_true", help="use the plain asyncio event loop")
    serve.add_argument("--log-level", default="INFO")
    check = sub.add_parser("check", help="validate a configuration file and print the compiled plan")
    check.add_argument("config")
    keys = sub.add_parser("tls-keys", help="manage the shared session-ticket key file")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    rotate = keys_sub.add_parser("rotate", help="prepend a fresh key (creating the file if needed), keep the newest")
    rotate.add_argument("file")
    rotate.add_argument("--keep", type=int, default=3, help="keys kept, newest first (default 3)")
    sub.add_parser("version", help="print the version and the OpenSSL and libnghttp2 in use")
    return parser


def _version() -> int:
    from albatross.http2._binding import nghttp2_version
    from albatross.tls.binding import openssl_version

    print(f"albatross {__version__} ({openssl_version()}, libnghttp2 {nghttp2_version()})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(args, "log_level", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command == "demo":
            return _demo(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "check":
            return _check(args)
        if args.command == "tls-keys":
            return _tls_keys(args)
        return _version()
    except AlbatrossError as exc:
        print(f"albatross: error: {exc}", file=sys.stderr)
        return 2
