"""The probe's output: a table for people, a JSON document for programs, with the same rows."""

from __future__ import annotations

import json
from typing import Any

from albatross.probe.checks import Findings
from albatross.probe.findings import Row

__all__ = ["document", "format_json", "format_table"]

_HEADER = Row("CHECK", "RESULT", "DETAIL")


def _title(findings: Findings) -> str:
    t = findings.target
    return f"albatross probe https://{t.authority}{t.path}  ({t.address}, SNI {t.sni or 'none'})"


def format_table(findings: Findings) -> str:
    rows = [_HEADER, *findings.rows()]
    check_w = max(len(r.check) for r in rows)
    result_w = max(len(r.result) for r in rows)
    lines = [_title(findings), ""]
    lines += [f"{r.check:<{check_w}}  {r.result:<{result_w}}  {r.detail}".rstrip() for r in rows]
    return "\n".join(lines) + "\n"


def document(findings: Findings) -> dict[str, Any]:
    t = findings.target
    return {
        "target": {"host": t.host, "port": t.port, "path": t.path, "address": t.address, "sni": t.sni},
        "checks": [{"check": r.check, "result": r.result, "detail": r.detail, "data": r.data}
                   for r in findings.rows()],
    }


def format_json(findings: Findings) -> str:
    return json.dumps(document(findings), indent=2, default=list) + "\n"
