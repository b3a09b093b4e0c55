"""The ``albatross`` command.

* ``albatross demo``: an HTTPS listener (and optionally a plain HTTP one) on 127.0.0.1 with
  a self-signed certificate made on first run, serving the built-in page. Flags cover what
  the TLS front end offers until configuration files arrive.
* ``albatross serve CONFIG`` / ``albatross check CONFIG``: run / validate a configuration.
* ``albatross reload [CONFIG]`` / ``albatross targets [CONFIG] [--json]``: talk to a running
  balancer's admin endpoint (its address is read from CONFIG's ``admin:`` or ``--admin``).
* ``albatross probe https://HOST:PORT``: the seed's TLS checks against any HTTPS server.
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
    p.add_argument("--admin-port", type=int, default=None,
                   help="serve the admin endpoint (target health, /healthz) on ADDRESS:PORT; off by default")
    p.add_argument("--access-log", default=None, metavar="FILE", help="write ALB-format access log lines to FILE")
    p.add_argument("--connection-log", default=None, metavar="FILE",
                   help="write ALB-format connection log lines (TLS handshakes) to FILE")
    p.add_argument("--stop-timeout", type=float, default=30.0,
                   help="seconds a stop lets in-flight requests finish (default 30)")
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
    from albatross.server.admin import admin_app
    from albatross.server.app import page
    from albatross.server.demo_targets import start_target
    from albatross.server.health import Probe
    from albatross.server.lifecycle import Server
    from albatross.server.listener import Binding, ListenerSettings
    from albatross.server.loop import run
    from albatross.server.plan import Plan
    from albatross.server.upstream import TargetPool
    from albatross.targets.health import HealthCheckSettings, TargetHealth
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
    plan = Plan(idle_timeout=args.idle_timeout, ring=ring, stop_timeout=args.stop_timeout, name="demo",
                access_log=args.access_log, connection_log=args.connection_log)
    if args.admin_port is not None:
        plan.admin = (args.address, args.admin_port)

    async def main() -> None:
        if args.targets > 0:
            # The demo group checks its targets as an ALB group would (GET /healthz every 5 s).
            checks = HealthCheckSettings(path="/healthz", interval_seconds=5, timeout_seconds=2,
                                         healthy_threshold=2, unhealthy_threshold=2)
            group = plan.groups["demo"] = TargetGroupRuntime("demo", sticky_key=plan.sticky_key)
            for n in range(args.targets):
                server = await start_target(f"target-{n + 1}")
                port = server.sockets[0].getsockname()[1]
                print(f"albatross: demo target target-{n + 1} on 127.0.0.1 {port}", file=sys.stderr, flush=True)
                group.targets.append(Target("127.0.0.1", port, TargetPool("127.0.0.1", port),
                                            health=TargetHealth(checks, time.monotonic()), group="demo",
                                            probe=Probe("127.0.0.1", port, checks.path, checks.timeout_seconds)))
            https_app = forward_app(group, ForwardingPolicy(), scheme="https")
            http_app = forward_app(group, ForwardingPolicy(), scheme="http")
        else:
            https_app = http_app = static(page)
        plan.bindings.append(Binding(args.address, args.https_port, "https", https_app, listener_settings, context))
        if args.http_port is not None:
            plan.bindings.append(Binding(args.address, args.http_port, "http", http_app, listener_settings))
        await Server(plan, admin_app=admin_app).run()

    run(main(), prefer_uvloop=not args.no_uvloop)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from albatross.config import load
    from albatross.server.admin import admin_app
    from albatross.server.lifecycle import Server
    from albatross.server.loop import run
    from albatross.server.plan import Plan, compile_plan
    from albatross.tls import open_key_log

    path = args.config
    plan = compile_plan(load(path), path)
    if plan.key_log:
        open_key_log(plan.key_log)

    def recompile(previous: Plan) -> Plan:
        return compile_plan(load(path), path, previous)

    async def main() -> None:
        await Server(plan, reload=recompile, admin_app=admin_app).run()

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


def _admin_address(args: argparse.Namespace) -> tuple[str, int]:
    """Where the admin endpoint listens: ``--admin HOST:PORT``, else the configuration's ``admin:``.

    The file is read leniently (only ``admin:``), so that ``albatross reload`` can still ask a
    running balancer to try a file that has mistakes elsewhere, and report them.
    """
    if args.admin:
        host, sep, port = args.admin.rpartition(":")
        if not sep or not port.isdigit():
            raise AlbatrossError(f"--admin wants HOST:PORT, not {args.admin!r}")
        return host.strip("[]") or "127.0.0.1", int(port)
    if not args.config:
        raise AlbatrossError("name the configuration file (for its admin: section) or pass --admin HOST:PORT")
    import yaml

    try:
        with open(args.config, encoding="utf-8") as f:
            document = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise AlbatrossError(f"{args.config}: cannot read its admin: section ({exc}); pass --admin HOST:PORT") from None
    admin = document.get("admin") if isinstance(document, dict) else None
    if not isinstance(admin, dict):
        raise AlbatrossError(f"{args.config} has no admin: section, so the balancer has no admin endpoint; "
                             "add one (admin: {port: 9900}) or send the process SIGHUP to reload")
    return str(admin.get("address", "127.0.0.1")), int(admin.get("port", 9900))


def _admin_request(args: argparse.Namespace, method: str, path: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    import http.client
    import json

    host, port = _admin_address(args)
    conn = http.client.HTTPConnection(host, port, timeout=args.timeout)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        body = response.read()
    except OSError as exc:
        raise AlbatrossError(f"no admin endpoint at {host}:{port}: {exc.strerror or exc}") from None
    finally:
        conn.close()
    try:
        return response.status, json.loads(body)
    except ValueError:
        raise AlbatrossError(f"{host}:{port} answered {response.status} without JSON: is it Albatross's admin endpoint?") from None


def _reload(args: argparse.Namespace) -> int:
    status, result = _admin_request(args, "POST", "/reload")
    if status == 200 and result.get("ok"):
        print(f"albatross: {result['message']}")
        return 0
    print(f"albatross: reload refused, configuration {result.get('generation')} keeps serving:\n"
          f"  {result.get('message')}", file=sys.stderr)
    return 1


def format_target_health(document: dict) -> str:  # type: ignore[type-arg]
    """``GET /targets`` as a table, in the spirit of ``aws elbv2 describe-target-health``."""
    rows = [("TARGET GROUP", "TARGET", "PORT", "HEALTH PORT", "STATE", "IN FLIGHT", "REASON", "DESCRIPTION")]
    for group in document["target_groups"]:
        descriptions = group["target_health_descriptions"] or [None]
        for d in descriptions:
            if d is None:
                rows.append((group["name"], "(no targets)", "", "", "", "", "", ""))
                continue
            target, health = d["target"], d["target_health"]
            shown = str(target["id"]) + (f" ({target['address']})" if "address" in target else "")
            rows.append((group["name"], shown, str(target["port"]), d["health_check_port"], health["state"],
                         str(d["outstanding_requests"]), health.get("reason", ""), health.get("description", "")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1]
                     for row in rows).replace("  \n", "\n").rstrip() + "\n"


def _targets(args: argparse.Namespace) -> int:
    import json

    status, document = _admin_request(args, "GET", "/targets")
    if status != 200:
        raise AlbatrossError(f"admin endpoint answered {status}: {document}")
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        sys.stdout.write("\n".join(line.rstrip() for line in format_target_health(document).splitlines()) + "\n")
    return 0


def _tls_keys(args: argparse.Namespace) -> int:
    from albatross.tls import rotate_key_file

    keys = rotate_key_file(args.file, keep=args.keep)
    print(f"{args.file}: {len(keys)} keys, encrypting with key name {keys[0][:16].hex()}")
    return 0


def _add_probe(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("probe", help="run the seed report's TLS checks against any HTTPS server and print a table")
    p.add_argument("url", help="https://HOST[:PORT][/PATH] (only this server is contacted)")
    p.add_argument("--sni", default=None, help="server name to send (default: the URL's host if it is a name)")
    p.add_argument("--json", action="store_true", help="print the results as a JSON document")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds allowed per connection (default 10)")


def _probe(args: argparse.Namespace) -> int:
    """``albatross probe URL``: 0 once the checks ran (whatever they found); 2, with the reason on
    stderr, when the server is unreachable or the first TLS handshake fails."""
    from albatross.probe import format_json, format_table, probe

    if args.timeout <= 0:
        raise AlbatrossError("--timeout must be positive")
    findings = probe(args.url, sni=args.sni, timeout=args.timeout)
    sys.stdout.write(format_json(findings) if args.json else format_table(findings))
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
    for name, text in (("reload", "make a running balancer reload its configuration file, and say how it went"),
                       ("targets", "show each target group's targets and their health (like describe-target-health)")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("config", nargs="?", help="the balancer's configuration file (its admin: section is used)")
        cmd.add_argument("--admin", metavar="HOST:PORT", help="the admin endpoint, instead of reading CONFIG")
        cmd.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the answer (default 30)")
        if name == "targets":
            cmd.add_argument("--json", action="store_true", help="print the admin endpoint's JSON document")
    _add_probe(sub)
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
        if args.command == "reload":
            return _reload(args)
        if args.command == "targets":
            return _targets(args)
        if args.command == "probe":
            return _probe(args)
        return _version()
    except AlbatrossError as exc:
        print(f"albatross: error: {exc}", file=sys.stderr)
        return 2
