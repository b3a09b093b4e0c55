"""The admin endpoint's status page and its JSON: listeners, target health, live rates.

``GET /`` is one self-contained HTML page (no build step, no CDN, no external file). It is
rendered with the current state on the server, so it shows the listeners and every target's
health even without JavaScript; a small script then polls ``GET /status.json`` every two
seconds and redraws the tables, with request and error rates computed from the counters'
differences between polls.
"""

from __future__ import annotations

import html
import json
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from albatross.server.lifecycle import Server


def status(server: Server) -> dict[str, object]:
    """The ``GET /status.json`` document."""
    listeners = []
    active = {(listener.host, listener.port): len(listener.connections) for listener in server._all_listeners()}
    for stats in server.observer.listeners.values():
        if (stats.host, stats.port) not in server.listeners:
            continue
        listeners.append({
            "listener": stats.label, "scheme": stats.scheme, "address": stats.host, "port": stats.port,
            "active_connections": active.get((stats.host, stats.port), 0),
            "responses": stats.responses, "requests_forwarded": stats.requests,
            "elb_4xx": sum(n for code, n in stats.elb_codes.items() if code // 100 == 4),
            "elb_5xx": sum(n for code, n in stats.elb_codes.items() if code // 100 == 5),
            "tls_errors": stats.tls_errors,
        })
    groups = []
    draining: dict[str, list[dict[str, object]]] = {}
    for target in server.draining:
        draining.setdefault(target.group, []).append(target.describe())
    for name, group in server.plan.groups.items():
        s = group.stats
        groups.append({
            "name": name, "requests": s.requests,
            "target_2xx": s.target_codes.get(2, 0), "target_3xx": s.target_codes.get(3, 0),
            "target_4xx": s.target_codes.get(4, 0), "target_5xx": s.target_codes.get(5, 0),
            "connection_errors": s.connection_errors,
            "targets": [t.describe() for t in group.targets] + draining.pop(name, []),
        })
    for name, targets in draining.items():
        groups.append({"name": name, "requests": 0, "target_2xx": 0, "target_3xx": 0, "target_4xx": 0,
                       "target_5xx": 0, "connection_errors": 0, "targets": targets})
    return {"load_balancer": server.observer.elb, "generation": server.generation, "time": time.time(),
            "listeners": listeners, "target_groups": groups}


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #1b1b1b; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
table { border-collapse: collapse; min-width: 40em; }
th, td { text-align: left; padding: .3em .8em; border-bottom: 1px solid #ddd; }
th { background: #f2f2f2; }
td.state { font-weight: 600; }
.healthy, .unavailable { color: #137333; } .unhealthy { color: #c5221f; }
.initial, .draining { color: #b06000; } .unused { color: #5f6368; }
#updated { color: #5f6368; }
"""

_SCRIPT = """
const previous = {};
function cell(text, cls) { const td = document.createElement('td'); td.textContent = text;
  if (cls) td.className = cls; return td; }
function row(cells) { const tr = document.createElement('tr'); cells.forEach(c => tr.appendChild(c)); return tr; }
function rate(key, value, now) { const p = previous[key]; previous[key] = [value, now];
  if (!p || now <= p[1]) return '-'; return ((value - p[0]) / (now - p[1])).toFixed(1); }
function draw(s) {
  const lb = document.getElementById('listeners-body'); lb.replaceChildren();
  for (const l of s.listeners) {
    lb.appendChild(row([cell(l.listener), cell(l.address + ':' + l.port), cell(l.active_connections),
      cell(rate('r' + l.listener, l.responses, s.time)), cell(rate('e' + l.listener, l.elb_4xx + l.elb_5xx, s.time)),
      cell(l.responses), cell(l.elb_4xx), cell(l.elb_5xx)]));
  }
  const tb = document.getElementById('targets-body'); tb.replaceChildren();
  for (const g of s.target_groups) {
    for (const t of g.targets) {
      const h = t.target_health;
      tb.appendChild(row([cell(g.name), cell(t.target.id + (t.target.address ? ' (' + t.target.address + ')' : '')),
        cell(t.target.port), cell(h.state, 'state ' + h.state), cell(h.reason || ''), cell(h.description || ''),
        cell(t.outstanding_requests)]));
    }
    if (!g.targets.length) tb.appendChild(row([cell(g.name), cell('(no targets)'), cell(''), cell(''), cell(''),
      cell(''), cell('')]));
  }
  document.getElementById('updated').textContent = 'updated ' + new Date(s.time * 1000).toLocaleTimeString()
    + ', configuration ' + s.generation;
}
async function poll() {
  try { const r = await fetch('status.json', {cache: 'no-store'}); if (r.ok) draw(await r.json()); }
  catch (e) { document.getElementById('updated').textContent = 'admin endpoint unreachable'; }
}
poll(); setInterval(poll, 2000);
"""


def _td(value: object, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<td{attr}>{html.escape(str(value))}</td>"


def page(server: Server) -> bytes:
    s = status(server)
    listener_rows = "".join(
        "<tr>" + _td(l["listener"]) + _td(f"{l['address']}:{l['port']}") + _td(l["active_connections"])
        + _td("-") + _td("-") + _td(l["responses"]) + _td(l["elb_4xx"]) + _td(l["elb_5xx"]) + "</tr>"
        for l in s["listeners"])  # type: ignore[union-attr]
    target_rows = []
    for g in s["target_groups"]:  # type: ignore[union-attr]
        for t in g["targets"]:
            h = t["target_health"]
            who = t["target"]["id"] + (f" ({t['target']['address']})" if "address" in t["target"] else "")
            target_rows.append("<tr>" + _td(g["name"]) + _td(who) + _td(t["target"]["port"])
                               + _td(h["state"], "state " + h["state"]) + _td(h.get("reason", ""))
                               + _td(h.get("description", "")) + _td(t["outstanding_requests"]) + "</tr>")
        if not g["targets"]:
            target_rows.append("<tr>" + _td(g["name"]) + _td("(no targets)") + _td("") * 5 + "</tr>")
    title = html.escape(str(s["load_balancer"]))
    document = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Albatross {title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style></head>
<body><h1>Albatross <code>{title}</code></h1><p id="updated">configuration {s["generation"]}</p>
<h2>Listeners</h2>
<table id="listeners"><thead><tr><th>listener</th><th>address</th><th>connections</th><th>requests/s</th>
<th>errors/s</th><th>requests</th><th>ELB 4XX</th><th>ELB 5XX</th></tr></thead>
<tbody id="listeners-body">{listener_rows}</tbody></table>
<h2>Target groups</h2>
<table id="targets"><thead><tr><th>target group</th><th>target</th><th>port</th><th>state</th><th>reason</th>
<th>description</th><th>in flight</th></tr></thead>
<tbody id="targets-body">{"".join(target_rows)}</tbody></table>
<p><a href="metrics">metrics</a> · <a href="targets">targets (JSON)</a> · <a href="config">configuration</a></p>
<script>{_SCRIPT}</script></body></html>
"""
    return document.encode()


def status_json(server: Server) -> bytes:
    return json.dumps(status(server)).encode()
