"""Fault records keep no plaintext secret: their fields are sealed (Fernet) before they reach the journal.

A fault record must carry what its revert needs (a DSN, a Redis URL), and the revert may run in
another process (`recover`, the warden, the kill switch of another server), so the fields are
encrypted rather than dropped. The key is, in order:

    $CHAOS_MCP_JOURNAL_KEY                        a Fernet key (urlsafe base64, 32 bytes)
    <journal file>.key                            beside an SQLite journal, 0600
    <state dir>/journal.key                       for a PostgreSQL journal, 0600

Servers that share a PostgreSQL journal must share the key: the same file, or the same variable.
A key file is created on the first sealed record; an in-memory journal gets a key of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

KEY_ENV = "CHAOS_MCP_JOURNAL_KEY"
SEALED = "sealed"
UNREADABLE = "unreadable"  # set on a record whose fields could not be opened, with the reason


class SealError(Exception):
    """A record cannot be sealed or opened; the message says what to do."""


def key_path_for(url: str) -> Path | None:
    """Where the key file of this journal lives; None for an in-memory journal."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        return None if path in ("", ":memory:") else Path(f"{path}.key")
    if url == "sqlite://":
        return None
    from chaos_mcp.state import state_dir

    return state_dir() / "journal.key"


class Sealer:
    def __init__(self, key_path: Path | None) -> None:
        self.key_path = key_path
        self._fernet: Fernet | None = None

    def seal(self, record: dict[str, Any]) -> dict[str, Any]:
        """`{"kind", "module", "fields"}` → `{"kind", "module", "sealed": <token>}`."""
        if "fields" not in record:
            return record
        plain = {k: v for k, v in record.items() if k != "fields"}
        token = self._key(create=True).encrypt(json.dumps(record["fields"]).encode())
        return {**plain, SEALED: token.decode()}

    def open(self, record: dict[str, Any]) -> dict[str, Any]:
        if SEALED not in record:
            return record  # written before records were sealed
        plain = {k: v for k, v in record.items() if k != SEALED}
        try:
            fields = json.loads(self._key(create=False).decrypt(str(record[SEALED]).encode()))
        except InvalidToken:
            raise SealError(
                f"a fault record was sealed with another key than {self._where()}; give this process the "
                f"journal's key (the same key file, or {KEY_ENV}) so its faults can be reverted"
            ) from None
        return {**plain, "fields": fields}

    def _where(self) -> str:
        if os.environ.get(KEY_ENV):
            return KEY_ENV
        return str(self.key_path) if self.key_path else "this process's in-memory key"

    def _key(self, create: bool) -> Fernet:
        if self._fernet is None:
            self._fernet = Fernet(self._load(create))
        return self._fernet

    def _load(self, create: bool) -> bytes:
        explicit = os.environ.get(KEY_ENV)
        if explicit:
            try:
                Fernet(explicit.encode())
            except ValueError:
                raise SealError(
                    f"{KEY_ENV} is not a Fernet key (32 bytes, urlsafe base64); create one with `python -c "
                    '"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`'
                ) from None
            return explicit.encode()
        if self.key_path is None:
            return Fernet.generate_key()
        with contextlib.suppress(FileNotFoundError):
            return self._read()
        if not create:
            raise SealError(
                f"the journal's fault records are sealed, and its key file {self.key_path} is missing; "
                f"restore that file (or set {KEY_ENV}) so the faults can be reverted"
            )
        return self._create()

    def _read(self) -> bytes:
        assert self.key_path is not None
        key = self.key_path.read_bytes().strip()
        if not key:
            raise SealError(f"the journal's key file {self.key_path} is empty; restore it or set {KEY_ENV}")
        return key

    def _create(self) -> bytes:
        """Written under a temporary name and linked into place: a concurrent reader never sees half a key."""
        assert self.key_path is not None
        self.key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.key_path.with_name(f".{self.key_path.name}.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(Fernet.generate_key())
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):  # another process won the race: use its key
                os.link(temporary, self.key_path)
        finally:
            temporary.unlink(missing_ok=True)
        return self._read()
