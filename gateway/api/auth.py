"""API users, their roles and their tokens: only a token's sha256 is ever stored.

A site keeps its users in a YAML file (``api.users_file``)::

    users:
      - {name: alice, role: operator, token_sha256: 3f7a...}

``cgt-gateway user add`` makes a random token, prints it once and stores its hash. The API hashes the
bearer token it is shown and compares it with every stored hash in constant time; the file is read again
when it changes, so adding or removing a user needs no restart.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Literal

import structlog
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.config import load_yaml_model
from gateway.errors import ConfigError

log = structlog.get_logger(__name__)

RoleName = Literal["viewer", "operator", "qa", "admin"]


class Role(IntEnum):
    """Each role may do what the ones below it may."""

    VIEWER = 1
    OPERATOR = 2
    QA = 3
    ADMIN = 4

    @property
    def label(self) -> RoleName:
        return self.name.lower()  # type: ignore[return-value]

    @classmethod
    def of(cls, name: str) -> Role:
        return cls[name.upper()]


class UserEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$", description="who the audit trail names")
    role: RoleName
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the token, hex; never the token")


class UsersFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    users: list[UserEntry] = Field(default_factory=list)

    @field_validator("users")
    @classmethod
    def _unique(cls, users: list[UserEntry]) -> list[UserEntry]:
        names = [u.name for u in users]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"user {twice[0]!r} is listed twice")
        hashes = [u.token_sha256 for u in users]
        if len(set(hashes)) != len(hashes):
            raise ValueError("two users share one token hash: give each person a token of their own")
        return users


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role

    def may(self, required: Role) -> bool:
        return self.role >= required


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A random token of 256 bits, URL-safe (it may travel as ``?token=`` on the live stream)."""
    return secrets.token_urlsafe(32)


def read_users(path: Path) -> UsersFile:
    """The users file, or an empty one when it does not exist yet; ConfigError with the line when it is wrong."""
    if not path.exists():
        return UsersFile()
    return load_yaml_model(path, UsersFile, shape="expected a mapping with users:")


def write_users(path: Path, users: UsersFile) -> None:
    """Replace the file atomically, readable by its owner only (hashes still deserve care)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"users": [u.model_dump() for u in users.users]}
    text = (
        "# cgt-gateway API users. Only sha256 hashes of tokens are kept: a lost token cannot be recovered,\n"
        "# remove the user and add them again (`cgt-gateway user remove/add`).\n"
        + yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=200)
    )
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def add_user(path: Path, name: str, role: RoleName) -> str:
    """Add ``name`` with a new token; return the token (shown once, stored nowhere)."""
    current = read_users(path)
    if any(u.name == name for u in current.users):
        raise ConfigError(f"{path}: user {name!r} exists already (remove them first to issue a new token)")
    token = new_token()
    try:
        entry = UserEntry(name=name, role=role, token_sha256=token_hash(token))
    except ValueError as exc:
        raise ConfigError(f"user {name!r}: a name is a letter or digit then letters, digits or . _ @ -") from exc
    write_users(path, UsersFile(users=[*current.users, entry]))
    return token


def remove_user(path: Path, name: str) -> None:
    current = read_users(path)
    if not any(u.name == name for u in current.users):
        known = ", ".join(u.name for u in current.users) or "none"
        raise ConfigError(f"{path}: no user {name!r} (users: {known})")
    write_users(path, UsersFile(users=[u for u in current.users if u.name != name]))


class UserBook:
    """Who a token belongs to. Re-reads the users file when it changes; keeps the last good one if it breaks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._users: list[UserEntry] = []
        self._reload()
        if not self._users:
            log.warning("the API has no users yet: add one with `cgt-gateway user add`", users_file=str(path))

    def authenticate(self, token: str | None) -> User | None:
        """The user holding ``token``; every stored hash is compared, in constant time."""
        if not token:
            return None
        self._reload()
        presented = token_hash(token)
        found: UserEntry | None = None
        for entry in self._users:
            if hmac.compare_digest(presented, entry.token_sha256):
                found = entry
        return None if found is None else User(found.name, Role.of(found.role))

    def _reload(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._users = None, []
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        try:
            self._users = list(read_users(self.path).users)
        except ConfigError as exc:
            log.error("users file is wrong; keeping the users read before", problems=exc.problems)
        self._stamp = stamp
