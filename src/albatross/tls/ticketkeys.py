"""Session-ticket keys: the shared key file, its atomic rotation, and the in-memory ring.

Key file format (``tls.session_ticket_keys``): one base64-encoded 80-byte key per line,
newest first. Each key is a 16-byte name, a 32-byte AES-256-CBC key and a 32-byte
HMAC-SHA256 key (RFC 5077's recommended construction). The first line encrypts new tickets;
every line decrypts. Blank lines and lines starting with ``#`` are ignored.

Every process and every host that reads the same file, and uses the same session-id context
(see ``context.SESSION_ID_CONTEXT``), resumes the others' sessions. ``albatross tls-keys
rotate FILE`` prepends a fresh key and keeps the newest three, so a ticket stays decryptable
for two rotation periods after its key stopped encrypting. Run it from one place (a cron job
or a systemd timer) every ``session_ticket_rotation_seconds``; servers notice the change
within a second and never block a handshake on it.

Without a key file each process keeps its own ring in memory, rotated on the same schedule:
tickets then resume only on the process that issued them (as ALB's per-node keys).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import tempfile
from dataclasses import dataclass

from albatross.errors import ConfigError
from albatross.tls.binding import ffi, lib

log = logging.getLogger("albatross.tls")

KEY_LEN = 80
KEEP = 3


def new_key() -> bytes:
    return os.urandom(KEY_LEN)


def parse_key_file(text: str, path: str) -> list[bytes]:
    """Parse a key file; every bad line is a ConfigError naming the file and the line."""
    keys: list[bytes] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            key = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(path, "not valid base64", where=f"line {number}") from None
        if len(key) != KEY_LEN:
            raise ConfigError(path, f"a key must be {KEY_LEN} bytes, this one is {len(key)}", where=f"line {number}")
        keys.append(key)
    if not keys:
        raise ConfigError(path, "no session ticket keys in file")
    if len(keys) > lib.ALB_MAX_TICKET_KEYS:
        raise ConfigError(path, f"at most {lib.ALB_MAX_TICKET_KEYS} keys are used, the file has {len(keys)}")
    if len(set(k[:16] for k in keys)) != len(keys):
        raise ConfigError(path, "two keys share a key name")
    return keys


def read_key_file(path: str) -> list[bytes]:
    try:
        with open(path, encoding="ascii") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise ConfigError(path, "not a text file of base64 keys") from None
    except OSError as exc:
        raise ConfigError(path, f"cannot read session ticket key file: {exc.strerror or exc}") from None
    return parse_key_file(text, path)


def format_key_file(keys: list[bytes]) -> str:
    return "".join(base64.b64encode(k).decode() + "\n" for k in keys)


def rotate_key_file(path: str, keep: int = KEEP) -> list[bytes]:
    """Prepend a fresh key to ``path`` (created if missing), keep the newest ``keep``.

    The file is replaced atomically (write to a temporary file beside it, fsync, rename), so
    a server reading it concurrently sees either the old or the new file, never half of one.
    """
    keys = read_key_file(path) if os.path.exists(path) else []
    keys = [new_key(), *keys][:keep]
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ticket-keys.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(format_key_file(keys))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return keys


@dataclass(frozen=True, slots=True)
class TicketStats:
    encrypted: int
    decrypted: int
    unknown: int


class TicketKeyRing:
    """The keys OpenSSL's ticket callback reads (a C struct owned here, shared by all contexts).

    ``refresh(now)`` is called by the server about once a second, off the handshake path: it
    reloads a changed key file (keeping the old keys if the new file is broken) or rotates the
    in-memory ring when its period has passed.
    """

    def __init__(self, path: str | None = None, rotation_seconds: float = 3600.0, *, now: float = 0.0) -> None:
        self.path = path
        self.rotation_seconds = rotation_seconds
        self.c = ffi.new("alb_ticket_ring *")
        self._stamp: tuple[int, int, int] | None = None
        self._rotated_at = now
        if path is None:
            self._install([new_key()])
        else:
            self._stamp = self._file_stamp()
            self._install(read_key_file(path))

    @property
    def keys(self) -> list[bytes]:
        return [bytes(ffi.buffer(self.c.keys + i * KEY_LEN, KEY_LEN)) for i in range(self.c.n)]

    @property
    def stats(self) -> TicketStats:
        return TicketStats(self.c.encrypted, self.c.decrypted, self.c.unknown)

    def _install(self, keys: list[bytes]) -> None:
        keys = keys[: lib.ALB_MAX_TICKET_KEYS]
        blob = b"".join(keys)
        # Shrinking n first means the C callback never sees a half-written key: all of this
        # runs on the loop thread, between handshakes, but stay safe by construction.
        self.c.n = 0
        ffi.memmove(self.c.keys, blob, len(blob))
        self.c.n = len(keys)

    def _file_stamp(self) -> tuple[int, int, int] | None:
        assert self.path is not None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def refresh(self, now: float) -> bool:
        """Reload or rotate if due; returns True when the keys changed."""
        if self.path is None:
            if now - self._rotated_at < self.rotation_seconds:
                return False
            self._rotated_at = now
            self._install([new_key(), *self.keys][:KEEP])
            log.info("session ticket keys rotated in memory")
            return True
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            keys = read_key_file(self.path)
        except ConfigError as exc:
            log.error("session ticket key file not reloaded, keeping the previous keys: %s", exc)
            return False
        self._install(keys)
        log.info("session ticket keys reloaded from %s (%d keys)", self.path, len(keys))
        return True
