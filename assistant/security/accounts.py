"""Operator accounts: usernames, roles and argon2id password hashes (the
``operators`` table). Disabling an account or changing its password ends its
sessions (``operator_sessions``)."""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, List, Optional

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from assistant.storage.database import session_factory
from assistant.storage.tables import ROLE_NAMES, Operator, OperatorSession

logger = logging.getLogger(__name__)

MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 256
USERNAME_RE = re.compile(r"^[a-z0-9_.-]{3,32}$")
ROLE_ADMIN = "admin"
ROLE_OPERATOR = "operator"
ROLE_LABELS = {ROLE_OPERATOR: "坐席", ROLE_ADMIN: "管理员"}

_hasher = PasswordHasher(type=Type.ID)


# ----------------------------------------------------------------- errors
class DuplicateUsername(ValueError):
    """The username is already taken."""


class OperatorNotFound(LookupError):
    """No operator with that username."""


class LastAdminError(ValueError):
    """The change would leave no active admin."""


# --------------------------------------------------------------- passwords
def hash_password(password: str) -> str:
    """argon2id hash of ``password`` (at least 10 characters)."""
    check_password(password)
    return _hasher.hash(password)


def check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"password must be at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"password must be at most {MAX_PASSWORD_CHARS} characters")


def verify_password(
    password_hash: str, password: str, rehash: Optional[Callable[[str], None]] = None
) -> bool:
    """Whether ``password`` matches ``password_hash``.

    When it matches and the hash uses outdated parameters, ``rehash`` is called with
    a fresh hash of the password (to be stored instead).
    """
    try:
        _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    if rehash is not None and _hasher.check_needs_rehash(password_hash):
        rehash(_hasher.hash(password))
    return True


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash to verify unknown usernames against, so that they take as long as known ones."""
    return _hasher.hash(secrets.token_urlsafe(16))


# ----------------------------------------------------------------- accounts
@dataclass(frozen=True)
class OperatorInfo:
    username: str
    display_name: str
    role: str
    active: bool
    created_at: dt.datetime

    @classmethod
    def of(cls, row: Operator) -> "OperatorInfo":
        return cls(row.username, row.display_name, row.role, bool(row.active), row.created_at)

    def as_dict(self) -> dict:
        return {
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role,
            "active": self.active,
            "created_at": self.created_at.isoformat(),
        }


def check_username(username: str) -> None:
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        raise ValueError("username must be 3-32 characters of a-z, 0-9, '_', '.', '-'")


def check_role(role: str) -> None:
    if role not in ROLE_NAMES:
        raise ValueError(f"role must be one of: {', '.join(ROLE_NAMES)}")


def create_operator(
    db_url: str,
    username: str,
    password: str,
    role: str = ROLE_OPERATOR,
    display_name: Optional[str] = None,
) -> OperatorInfo:
    """Create an account. ValueError (DuplicateUsername for a taken name) on bad input."""
    check_username(username)
    check_role(role)
    display_name = (display_name or username).strip() or username
    if len(display_name) > 64:
        raise ValueError("display name must be at most 64 characters")
    password_hash = hash_password(password)
    with session_factory(db_url)() as db:
        if db.execute(select(Operator.id).where(Operator.username == username)).first():
            raise DuplicateUsername(f"username already exists: {username}")
        row = Operator(
            username=username,
            display_name=display_name,
            password_hash=password_hash,
            role=role,
            active=True,
        )
        db.add(row)
        try:
            db.commit()
        except IntegrityError as exc:  # created concurrently
            raise DuplicateUsername(f"username already exists: {username}") from exc
        logger.info("desk.operator.created user=%s role=%s", username, role)
        return OperatorInfo.of(row)


def list_operators(db_url: str) -> List[OperatorInfo]:
    with session_factory(db_url)() as db:
        rows = db.execute(select(Operator).order_by(Operator.username)).scalars().all()
        return [OperatorInfo.of(row) for row in rows]


def get_operator(db_url: str, username: str) -> Optional[OperatorInfo]:
    with session_factory(db_url)() as db:
        row = db.execute(select(Operator).where(Operator.username == username)).scalar_one_or_none()
        return OperatorInfo.of(row) if row is not None else None


def update_operator(
    db_url: str,
    username: str,
    *,
    active: Optional[bool] = None,
    role: Optional[str] = None,
    password: Optional[str] = None,
) -> OperatorInfo:
    """Change an account in one transaction.

    Disabling an account or changing its password ends its sessions. Raises
    OperatorNotFound, ValueError (bad role/password) or LastAdminError.
    """
    if role is not None:
        check_role(role)
    password_hash = hash_password(password) if password is not None else None
    with session_factory(db_url)() as db:
        row = db.execute(select(Operator).where(Operator.username == username)).scalar_one_or_none()
        if row is None:
            raise OperatorNotFound(username)
        was_admin = row.active and row.role == ROLE_ADMIN
        if active is not None:
            row.active = active
        if role is not None:
            row.role = role
        if was_admin and not (row.active and row.role == ROLE_ADMIN):
            others = db.execute(
                select(func.count(Operator.id)).where(
                    Operator.role == ROLE_ADMIN,
                    Operator.active.is_(True),
                    Operator.id != row.id,
                )
            ).scalar_one()
            if others == 0:
                db.rollback()
                raise LastAdminError("at least one active admin must remain")
        if password_hash is not None:
            row.password_hash = password_hash
        if active is False or password_hash is not None:
            db.execute(delete(OperatorSession).where(OperatorSession.operator_id == row.id))
        db.commit()
        logger.info(
            "desk.operator.updated user=%s active=%s role=%s password_changed=%s",
            username,
            row.active,
            row.role,
            password_hash is not None,
        )
        return OperatorInfo.of(row)


def set_password(db_url: str, username: str, password: str) -> OperatorInfo:
    """New password (ends the account's sessions)."""
    return update_operator(db_url, username, password=password)


def set_active(db_url: str, username: str, active: bool) -> OperatorInfo:
    """Enable or disable an account; disabling ends its sessions at once."""
    return update_operator(db_url, username, active=active)
