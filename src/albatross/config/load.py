"""Read a YAML or JSON configuration file into the frozen model, with errors that point.

Every error names the file, the place inside it (``listeners[1].default_actions[0].type``)
and the reason; an unknown key gets a "did you mean" hint from the model's own field names.
"""

from __future__ import annotations

import difflib
import json
import os
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from albatross.config.model import Config
from albatross.errors import ConfigError


def format_location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class that the location ``loc`` points into (for "did you mean" hints)."""
    model: Any = Config
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return None
        model = _inner_model(field.annotation)
        if model is None:
            return None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    """The BaseModel inside an annotation such as ``list[Listener]`` or ``Action | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _reason(error: dict[str, Any]) -> str:
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        key = str(loc[-1])
        parent = _model_at(loc[:-1])
        hint = ""
        if parent is not None:
            close = difflib.get_close_matches(key, list(parent.model_fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown key {key!r}{hint}"
    if error["type"] == "missing":
        return "required key is missing"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def parse(data: object, source: str) -> Config:
    """Validate an already-parsed document."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        # A union reports one error per branch; the location up to the branch name is what matters.
        where = format_location(tuple(p for p in loc if not (isinstance(p, str) and "[" in p))) or None
        more = len(exc.errors()) - 1
        reason = _reason(first) + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
        raise ConfigError(source, reason, where=where) from None


def load(path: str) -> Config:
    """Read and validate a YAML (or JSON) configuration file."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(path, f"cannot read configuration: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else None
        raise ConfigError(path, f"not valid {'JSON' if path.endswith('.json') else 'YAML'}: "
                                f"{getattr(exc, 'problem', None) or exc}", where=where) from None
    if not isinstance(data, dict):
        raise ConfigError(path, "the configuration must be a mapping at the top level")
    return parse(data, path)


def resolve(path: str | None, base: str) -> str | None:
    """Paths in a configuration file are relative to the file's directory."""
    if path is None:
        return None
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base, path))
