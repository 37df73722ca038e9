"""The watcher's alerts (``cadenas watch``): the same shape as Rust's ``cadenas::watch::Alert``
and ``HandledAlert`` and as ``cadenas --json watch`` prints them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from ._reports import NotificationOutcome, _Dict

__all__ = ["Alert", "AlertRule", "AutoOutcome", "HandledAlert"]


class AlertRule(str, enum.Enum):
    """What an alert is about."""

    NEW_NETWORK = "new_network"
    MANY_ACCOUNTS = "many_accounts"
    FAILURES_ON_ACCOUNT = "failures_on_account"
    FAILURES_FROM_ADDRESS = "failures_from_address"
    OUTSIDE_MAIL_RULE = "outside_mail_rule"
    SENDING_LIMIT = "sending_limit"


@dataclass(frozen=True)
class Alert(_Dict):
    """An alert: its identifier (the journal files it under it), the rule, the account (for
    the per-account rules), the address, when (the log line's time, RFC 3339), what was seen,
    and the command that contains it. Never a password or a message's content."""

    id: str
    rule: AlertRule
    account: str | None
    ip: str
    at: str
    detail: str
    command: str

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Alert:
        """Builds it from its JSON shape (``cadenas --json watch``, ``to_dict()``)."""
        return cls(
            id=d.get("id", ""),
            rule=AlertRule(d["rule"]),
            account=d.get("account"),
            ip=d["ip"],
            at=d["at"],
            detail=d["detail"],
            command=d["command"],
        )


@dataclass(frozen=True)
class AutoOutcome(_Dict):
    """What an automatic containment came to: ``outcome`` is ``contained`` (with its
    ``incident``), ``would_contain`` (a dry run), ``cap_reached`` (``recent`` containments in
    the last hour), ``refused`` or ``failed`` (with ``error``)."""

    outcome: str
    incident: str | None = None
    recent: int | None = None
    error: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AutoOutcome:
        """Builds it from its JSON shape."""
        return cls(
            outcome=d["outcome"], incident=d.get("incident"), recent=d.get("recent"), error=d.get("error")
        )


@dataclass(frozen=True)
class HandledAlert(_Dict):
    """An alert and what the watcher did about it: its automatic containment (when its rule
    may contain) and one outcome per message sent."""

    alert: Alert
    automatic: AutoOutcome | None = None
    notifications: list[NotificationOutcome] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HandledAlert:
        """Builds it from its JSON shape (the journal's ``alert`` record, ``to_dict()``)."""
        auto = d.get("automatic")
        return cls(
            alert=Alert.from_dict(d["alert"]),
            automatic=AutoOutcome.from_dict(auto) if auto else None,
            notifications=[NotificationOutcome.from_dict(n) for n in d.get("notifications", [])],
        )
