"""The incident record (``Responder.report``): the same shape as Rust's
``cadenas::report::IncidentReport`` and ``cadenas report --json``, rendered to HTML, Markdown
or CSV by the library itself."""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass, field
from typing import Any

from . import _cadenas
from ._reports import (
    AttributeChange,
    BadRecord,
    ErrorInfo,
    NotifyEvent,
    Step,
    StepStatus,
    _changes,
    _Dict,
    _error,
)

__all__ = [
    "AccountOutcome",
    "AccountRecord",
    "AttackerAddress",
    "Curve",
    "IncidentReport",
    "NotificationLine",
    "Problem",
    "Proof",
    "RunSummary",
    "StepLine",
    "Summary",
    "Timeline",
    "TimelineRow",
]


class AccountOutcome(str, enum.Enum):
    """How an account ended, as far as the journal says."""

    CONTAINED = "contained"
    NEEDS_ATTENTION = "needs_attention"
    INTERRUPTED = "interrupted"
    REFUSED = "refused"
    RELEASED = "released"


def _pair(p: list[int]) -> tuple[int, int]:
    return (int(p[0]), int(p[1]))


@dataclass(frozen=True)
class Proof(_Dict):
    """Whether the journal verified, and which of its records the report comes from."""

    journal: str
    journal_records: int
    head: str
    macs_checked: bool
    records: int
    seq_ranges: list[tuple[int, int]]
    unproven_records: int
    broken_at: BadRecord | None = None

    @property
    def intact(self) -> bool:
        """Whether the whole journal verified: no record edited, removed, inserted or forged."""
        return self.broken_at is None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Proof:
        """Builds it from its JSON shape."""
        bad = d.get("broken_at")
        return cls(
            journal=d["journal"],
            journal_records=d["journal_records"],
            head=d["head"],
            macs_checked=d["macs_checked"],
            records=d["records"],
            seq_ranges=[_pair(r) for r in d.get("seq_ranges", [])],
            unproven_records=d["unproven_records"],
            broken_at=BadRecord(line=bad["line"], reason=bad["reason"]) if bad else None,
        )


@dataclass(frozen=True)
class Problem(_Dict):
    """Something that could not be done, for one or more accounts (grouped by step, status
    and reason)."""

    outcome: AccountOutcome
    why: str
    users: list[str]
    step: Step | None = None
    status: StepStatus | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Problem:
        """Builds it from its JSON shape."""
        return cls(
            outcome=AccountOutcome(d["outcome"]),
            why=d["why"],
            users=list(d["users"]),
            step=Step(d["step"]) if d.get("step") else None,
            status=StepStatus(d["status"]) if d.get("status") else None,
        )


@dataclass(frozen=True)
class Summary(_Dict):
    """The figures a non-technical reader needs; times RFC 3339 UTC, durations in ms."""

    all_locked: bool
    accounts: int
    contained: int
    needs_attention: int
    refused: int
    released: int
    sessions_closed: int
    mail_rules_deactivated: int
    mail_held: int
    notifications_delivered: int
    notifications_failed: int
    problems: list[Problem]
    problems_total: int
    alert_at: str | None = None
    started_at: str | None = None
    first_lock_at: str | None = None
    last_lock_at: str | None = None
    ended_at: str | None = None
    to_last_lock_ms: int | None = None
    to_end_ms: int | None = None
    alert_to_last_lock_ms: int | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Summary:
        """Builds it from its JSON shape."""
        return cls(
            all_locked=d["all_locked"],
            accounts=d["accounts"],
            contained=d["contained"],
            needs_attention=d["needs_attention"],
            refused=d["refused"],
            released=d["released"],
            sessions_closed=d["sessions_closed"],
            mail_rules_deactivated=d["mail_rules_deactivated"],
            mail_held=d["mail_held"],
            notifications_delivered=d["notifications_delivered"],
            notifications_failed=d["notifications_failed"],
            problems=[Problem.from_dict(p) for p in d.get("problems", [])],
            problems_total=d["problems_total"],
            alert_at=d.get("alert_at"),
            started_at=d.get("started_at"),
            first_lock_at=d.get("first_lock_at"),
            last_lock_at=d.get("last_lock_at"),
            ended_at=d.get("ended_at"),
            to_last_lock_ms=d.get("to_last_lock_ms"),
            to_end_ms=d.get("to_end_ms"),
            alert_to_last_lock_ms=d.get("alert_to_last_lock_ms"),
        )


@dataclass(frozen=True)
class RunSummary(_Dict):
    """One run of the incident (contain, resume, release)."""

    action: str
    started_at: str
    accounts: int
    ended_at: str | None = None
    done: int | None = None
    failed: int | None = None
    note: str | None = None
    kick_from: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSummary:
        """Builds it from its JSON shape."""
        return cls(
            action=d["action"],
            started_at=d["started_at"],
            accounts=d["accounts"],
            ended_at=d.get("ended_at"),
            done=d.get("done"),
            failed=d.get("failed"),
            note=d.get("note"),
            kick_from=d.get("kick_from"),
        )


@dataclass(frozen=True)
class TimelineRow(_Dict):
    """One account on the timeline: each step done, in ms from the origin."""

    user: str
    steps: list[tuple[Step, int]]
    attention: bool

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TimelineRow:
        """Builds it from its JSON shape."""
        return cls(
            user=d["user"],
            steps=[(Step(s), int(ms)) for s, ms in d.get("steps", [])],
            attention=d["attention"],
        )


@dataclass(frozen=True)
class Curve(_Dict):
    """How many accounts had reached a step over time: (ms from the origin, accounts)."""

    step: Step
    total: int
    points: list[tuple[int, int]]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Curve:
        """Builds it from its JSON shape."""
        return cls(step=Step(d["step"]), total=d["total"], points=[_pair(p) for p in d.get("points", [])])


@dataclass(frozen=True)
class Timeline(_Dict):
    """When accounts reached each step: rows for a few accounts, curves for many."""

    span_ms: int
    rows: list[TimelineRow]
    curves: list[Curve]
    origin: str | None = None
    first_lock_ms: int | None = None
    last_lock_ms: int | None = None
    alert_ms: int | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Timeline:
        """Builds it from its JSON shape."""
        return cls(
            span_ms=d["span_ms"],
            rows=[TimelineRow.from_dict(r) for r in d.get("rows", [])],
            curves=[Curve.from_dict(c) for c in d.get("curves", [])],
            origin=d.get("origin"),
            first_lock_ms=d.get("first_lock_ms"),
            last_lock_ms=d.get("last_lock_ms"),
            alert_ms=d.get("alert_ms"),
        )


@dataclass(frozen=True)
class StepLine(_Dict):
    """One step of one account: its last outcome (``status`` None: started, no outcome)."""

    step: Step
    at: str
    tries: int
    status: StepStatus | None = None
    done_at: str | None = None
    took_ms: int | None = None
    note: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StepLine:
        """Builds it from its JSON shape."""
        return cls(
            step=Step(d["step"]),
            at=d["at"],
            tries=d["tries"],
            status=StepStatus(d["status"]) if d.get("status") else None,
            done_at=d.get("done_at"),
            took_ms=d.get("took_ms"),
            note=d.get("note"),
        )


@dataclass(frozen=True)
class AccountRecord(_Dict):
    """One account's record: its steps, sessions closed, mail, changes found, who was told."""

    user: str
    outcome: AccountOutcome
    steps: list[StepLine]
    sessions_closed: int
    mail_rules_deactivated: list[str]
    mail_rules_left_active: list[str]
    mail_held: int
    notified: list[str]
    dn: str | None = None
    refused: ErrorInfo | None = None
    changes: list[AttributeChange] | None = None
    sent_messages: int | None = None
    released_at: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AccountRecord:
        """Builds it from its JSON shape."""
        return cls(
            user=d["user"],
            outcome=AccountOutcome(d["outcome"]),
            steps=[StepLine.from_dict(s) for s in d.get("steps", [])],
            sessions_closed=d["sessions_closed"],
            mail_rules_deactivated=list(d.get("mail_rules_deactivated", [])),
            mail_rules_left_active=list(d.get("mail_rules_left_active", [])),
            mail_held=d["mail_held"],
            notified=list(d.get("notified", [])),
            dn=d.get("dn"),
            refused=_error(d.get("refused")),
            changes=_changes(d.get("changes")),
            sent_messages=d.get("sent_messages"),
            released_at=d.get("released_at"),
        )


@dataclass(frozen=True)
class AttackerAddress(_Dict):
    """An attacker's address range, the accounts seen from it, the sessions closed there."""

    range: str
    accounts: list[str]
    sessions_closed: int

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AttackerAddress:
        """Builds it from its JSON shape."""
        return cls(
            range=d["range"], accounts=list(d.get("accounts", [])), sessions_closed=d["sessions_closed"]
        )


@dataclass(frozen=True)
class NotificationLine(_Dict):
    """One notification sent: when, by which notifier, to whom (never its content)."""

    at: str
    notifier: str
    event: NotifyEvent
    recipients: list[str]
    users: int
    delivered: bool

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NotificationLine:
        """Builds it from its JSON shape."""
        return cls(
            at=d["at"],
            notifier=d["notifier"],
            event=NotifyEvent(d["event"]),
            recipients=list(d.get("recipients", [])),
            users=d["users"],
            delivered=d["delivered"],
        )


@dataclass(frozen=True)
class IncidentReport(_Dict):
    """The incident record, computed from the journal alone: the summary, the runs, the
    timeline, every account, the attacker's addresses, the notifications, and the proof
    (``proof.intact`` is False when the journal does not verify: every figure is then
    unproven, and the page says so first)."""

    incident: str
    proof: Proof
    summary: Summary
    runs: list[RunSummary]
    timeline: Timeline
    accounts: list[AccountRecord]
    attacker: list[AttackerAddress]
    notifications: list[NotificationLine]
    _source: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IncidentReport:
        """Builds it from its JSON shape (``cadenas report --json``, ``to_dict()``)."""
        return cls(
            incident=d["incident"],
            proof=Proof.from_dict(d["proof"]),
            summary=Summary.from_dict(d["summary"]),
            runs=[RunSummary.from_dict(r) for r in d.get("runs", [])],
            timeline=Timeline.from_dict(d["timeline"]),
            accounts=[AccountRecord.from_dict(a) for a in d.get("accounts", [])],
            attacker=[AttackerAddress.from_dict(a) for a in d.get("attacker", [])],
            notifications=[NotificationLine.from_dict(n) for n in d.get("notifications", [])],
            _source=copy.deepcopy(d),
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as plain dicts and lists: exactly what ``cadenas report --json`` prints."""
        return copy.deepcopy(self._source)

    def to_html(self, lang: str = "en") -> str:
        """The page: one self-contained HTML file (inline CSS and SVG, no script, no external
        resource), in ``"en"`` or ``"fr"``."""
        return _cadenas._render_report(self._source, "html", lang)

    def to_markdown(self, lang: str = "en") -> str:
        """The report as Markdown, in ``"en"`` or ``"fr"``."""
        return _cadenas._render_report(self._source, "md", lang)

    def accounts_csv(self) -> str:
        """Every account as CSV (a header line first)."""
        return _cadenas._render_report(self._source, "csv", "en")
