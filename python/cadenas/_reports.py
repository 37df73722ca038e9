"""Typed results of cadenas calls: the same shape as the Rust report types and the CLI's
``--json`` output, as dataclasses with typed attributes and ``to_dict()``."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any

from ._cadenas import Secret

Attributes = dict[str, list[str]]


class _Dict:
    def to_dict(self) -> dict[str, Any]:
        """The value as plain dicts, lists, strings and numbers (what ``--json`` prints)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload, no-any-return]


class Step(str, enum.Enum):
    """A step of a containment or a release."""

    LOCK = "lock"
    RESET_PASSWORD = "reset_password"
    REVOKE_SESSIONS = "revoke_sessions"
    REQUIRE_MFA = "require_mfa"
    RESTORE_FLAGS = "restore_flags"
    HOLD_MAIL = "hold_mail"


class StepStatus(str, enum.Enum):
    """How a step ended: ``changed``, ``already_so`` and ``partial`` are done; ``failed`` is not."""

    CHANGED = "changed"
    ALREADY_SO = "already_so"
    PARTIAL = "partial"
    FAILED = "failed"

    @property
    def is_done(self) -> bool:
        """Whether the step needs no further work."""
        return self is not StepStatus.FAILED


class RevocationStatus(str, enum.Enum):
    """How a revocation went."""

    REVOKED = "revoked"
    NOTHING_TO_REVOKE = "nothing_to_revoke"
    FAILED = "failed"


class AuthOutcome(str, enum.Enum):
    """What a login with password (+ code) amounts to."""

    OK = "ok"
    BAD_PASSWORD = "bad_password"
    MUST_CHANGE = "must_change"
    LOCKED = "locked"
    EXPIRED = "expired"
    MFA_REQUIRED = "mfa_required"
    MFA_NOT_ENROLLED = "mfa_not_enrolled"
    BAD_CODE = "bad_code"
    REPLAYED_CODE = "replayed_code"
    THROTTLED = "throttled"


@dataclass(frozen=True)
class LdapDiagnostic(_Dict):
    """An LDAP result kept as data."""

    rc: int
    text: str
    matched: str

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LdapDiagnostic:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        return cls(rc=d["rc"], text=d["text"], matched=d.get("matched", ""))


@dataclass(frozen=True)
class ErrorInfo(_Dict):
    """An error recorded in a report (the exception class for it is ``cadenas.<Kind>``)."""

    kind: str
    code: int
    message: str
    ldap: LdapDiagnostic | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ErrorInfo:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        ldap = d.get("ldap")
        return cls(
            kind=d["kind"],
            code=d["code"],
            message=d["message"],
            ldap=LdapDiagnostic.from_dict(ldap) if ldap else None,
        )


def _error(d: dict[str, Any] | None) -> ErrorInfo | None:
    return ErrorInfo.from_dict(d) if d else None


@dataclass(frozen=True)
class Change(_Dict):
    """What a directory primitive changed: the relevant attributes before and after (never a
    password or hash)."""

    action: str
    dn: str
    outcome: str
    before: Attributes
    after: Attributes

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Change:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        return cls(action=d["action"], dn=d["dn"], outcome=d["outcome"], before=d["before"], after=d["after"])


@dataclass(frozen=True)
class RevocationOutcome(_Dict):
    """What one revoker did for one account. "Revoked" is only claimed for what was revoked."""

    revoker: str
    status: RevocationStatus
    sessions_found: int | None
    sessions_closed: int
    cache_entries_flushed: int | None
    collateral: list[str]
    not_revoked: list[str]
    error: ErrorInfo | None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RevocationOutcome:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        return cls(
            revoker=d["revoker"],
            status=RevocationStatus(d["status"]),
            sessions_found=d.get("sessions_found"),
            sessions_closed=d["sessions_closed"],
            cache_entries_flushed=d.get("cache_entries_flushed"),
            collateral=list(d.get("collateral", [])),
            not_revoked=list(d.get("not_revoked", [])),
            error=_error(d.get("error")),
        )


@dataclass(frozen=True)
class AttributeChange(_Dict):
    """One change of an entry\'s attribute (or of its membership in ``group``) since the time
    asked for: when, by whom and on which server where the directory says, old and new values
    (never of a secret attribute: ``redacted``), and ``flagged`` for a way back in."""

    attribute: str
    time: str
    flagged: bool
    by: str | None = None
    server: str | None = None
    operation: str | None = None
    old: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    version: int | None = None
    group: str | None = None
    redacted: bool = False

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AttributeChange:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        return cls(
            attribute=d["attribute"],
            time=d["time"],
            flagged=d["flagged"],
            by=d.get("by"),
            server=d.get("server"),
            operation=d.get("operation"),
            old=list(d.get("old", [])),
            new=list(d.get("new", [])),
            version=d.get("version"),
            group=d.get("group"),
            redacted=d.get("redacted", False),
        )


def _changes(d: list[dict[str, Any]] | None) -> list[AttributeChange] | None:
    return None if d is None else [AttributeChange.from_dict(c) for c in d]


@dataclass(frozen=True)
class ReplicaCheck(_Dict):
    """What one replica showed after a containment: the accounts it showed locked (with the
    milliseconds it took), those still pending by the deadline, and why it could not be read."""

    url: str
    seen: list[tuple[str, int]]
    pending: list[str]
    error: ErrorInfo | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReplicaCheck:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        return cls(
            url=d["url"],
            seen=[(u, int(ms)) for u, ms in d.get("seen", [])],
            pending=list(d.get("pending", [])),
            error=_error(d.get("error")),
        )


@dataclass(frozen=True)
class ReplicaState(_Dict):
    """The lock of an account as one replica shows it (or why it could not be read)."""

    url: str
    lock: LockState | None = None
    error: ErrorInfo | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReplicaState:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        lock = d.get("lock")
        return cls(
            url=d["url"],
            lock=LockState.from_dict(lock) if lock else None,
            error=_error(d.get("error")),
        )


class NotifyEvent(str, enum.Enum):
    """What a notification is about."""

    CONTAINED = "contained"
    NEEDS_ATTENTION = "needs_attention"
    RELEASED = "released"
    MFA_RESET = "mfa_reset"
    SENDING_LIMIT = "sending_limit"
    ALERT = "alert"
    TEST = "test"


@dataclass(frozen=True)
class NotificationOutcome(_Dict):
    """What became of one notification message (``[[notify]]``): who, about which accounts,
    delivered or not (never a reason for the run itself to fail)."""

    notifier: str
    event: NotifyEvent
    recipients: list[str]
    users: list[str]
    delivered: bool
    attempts: int
    error: ErrorInfo | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NotificationOutcome:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        return cls(
            notifier=d["notifier"],
            event=NotifyEvent(d["event"]),
            recipients=list(d.get("recipients", [])),
            users=list(d.get("users", [])),
            delivered=d["delivered"],
            attempts=d["attempts"],
            error=_error(d.get("error")),
        )


@dataclass(frozen=True)
class Redirect(_Dict):
    """A Sieve command that sends mail outside the local domains: ``redirect``,
    ``redirect :copy`` or ``notify``, its target as written, and its line."""

    command: str
    target: str
    line: int

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Redirect:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        return cls(command=d["command"], target=d["target"], line=d["line"])


@dataclass(frozen=True)
class MailRule(_Dict):
    """A user's Sieve script that sends mail outside the local domains: where it was read, its
    name, whether it was active, its SHA-256, the commands, and whether this run deactivated it."""

    server: str
    script: str
    active: bool
    sha256: str
    redirects: list[Redirect]
    deactivated: bool

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MailRule:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        return cls(
            server=d["server"],
            script=d["script"],
            active=d["active"],
            sha256=d["sha256"],
            redirects=[Redirect.from_dict(r) for r in d.get("redirects", [])],
            deactivated=d["deactivated"],
        )


class SightingKind(str, enum.Enum):
    """How an account was seen from the attacker\'s addresses."""

    LIVE_SESSION = "live_session"
    LOGGED_IN = "logged_in"
    FAILED_LOGIN = "failed_login"


@dataclass(frozen=True)
class Sighting(_Dict):
    """One account seen from the range by one source (a Dovecot\'s name or a log file)."""

    user: str
    ip: str
    kind: SightingKind
    service: str
    source: str
    count: int
    first_seen: str | None = None
    last_seen: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Sighting:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        return cls(
            user=d["user"],
            ip=d["ip"],
            kind=SightingKind(d["kind"]),
            service=d["service"],
            source=d["source"],
            count=d["count"],
            first_seen=d.get("first_seen"),
            last_seen=d.get("last_seen"),
        )


@dataclass(frozen=True)
class PivotReport(_Dict):
    """Who was seen from the attacker\'s addresses: the sightings, the accounts they point to
    (``users``, what ``contain_from`` contains), those only tried, and the sources read."""

    range: str
    sightings: list[Sighting]
    users: list[str]
    tried_only: list[str]
    sources: list[str]
    since: str | None = None
    until: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PivotReport:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        return cls(
            range=d["range"],
            sightings=[Sighting.from_dict(s) for s in d.get("sightings", [])],
            users=list(d.get("users", [])),
            tried_only=list(d.get("tried_only", [])),
            sources=list(d.get("sources", [])),
            since=d.get("since"),
            until=d.get("until"),
        )


@dataclass(frozen=True)
class QueuedMail(_Dict):
    """One message in the Postfix queue, as its envelope says (never its content)."""

    queue_id: str
    queue: str
    sender: str
    recipients: list[str]
    arrival_time: int
    sasl_username: str | None = None
    client_address: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QueuedMail:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        return cls(
            queue_id=d["queue_id"],
            queue=d["queue"],
            sender=d["sender"],
            recipients=list(d.get("recipients", [])),
            arrival_time=d["arrival_time"],
            sasl_username=d.get("sasl_username"),
            client_address=d.get("client_address"),
        )


@dataclass(frozen=True)
class HeldMail(_Dict):
    """What the hold-mail step did: the account\'s messages put on hold in the Postfix queue,
    those on hold already, those gone before the hold, and the outside domains."""

    messages: list[QueuedMail]
    outside_domains: list[str]
    already_held: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HeldMail:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        return cls(
            messages=[QueuedMail.from_dict(m) for m in d.get("messages", [])],
            outside_domains=list(d.get("outside_domains", [])),
            already_held=list(d.get("already_held", [])),
            gone=list(d.get("gone", [])),
        )


@dataclass(frozen=True)
class SentMail(_Dict):
    """What an account sent since a time, from Postfix\'s log: numbers and addresses, never
    content."""

    login: str
    messages: int
    recipients: int
    outside_domains: list[str]
    client_addresses: list[str]
    queue_ids: list[str]
    since: str | None = None
    first: str | None = None
    last: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SentMail:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        return cls(
            login=d["login"],
            messages=d["messages"],
            recipients=d["recipients"],
            outside_domains=list(d.get("outside_domains", [])),
            client_addresses=list(d.get("client_addresses", [])),
            queue_ids=list(d.get("queue_ids", [])),
            since=d.get("since"),
            first=d.get("first"),
            last=d.get("last"),
        )


@dataclass(frozen=True)
class StepDetail(_Dict):
    """What one step did; fields that do not apply to the step are ``None`` or empty."""

    change: Change | None = None
    relocked: bool | None = None
    revocations: list[RevocationOutcome] = field(default_factory=list)
    enrolments_dropped: bool | None = None
    error: ErrorInfo | None = None
    note: str | None = None
    mail_rules: list[MailRule] = field(default_factory=list)
    login: str | None = None
    held_mail: HeldMail | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StepDetail:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        change = d.get("change")
        held = d.get("held_mail")
        return cls(
            change=Change.from_dict(change) if change else None,
            relocked=d.get("relocked"),
            revocations=[RevocationOutcome.from_dict(r) for r in d.get("revocations", [])],
            enrolments_dropped=d.get("enrolments_dropped"),
            error=_error(d.get("error")),
            note=d.get("note"),
            mail_rules=[MailRule.from_dict(m) for m in d.get("mail_rules", [])],
            login=d.get("login"),
            held_mail=HeldMail.from_dict(held) if held else None,
        )


@dataclass(frozen=True)
class StepReport(_Dict):
    """One step's result for one user."""

    step: Step
    status: StepStatus
    detail: StepDetail
    from_earlier_run: bool = False

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StepReport:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        return cls(
            step=Step(d["step"]),
            status=StepStatus(d["status"]),
            detail=StepDetail.from_dict(d.get("detail", {})),
            from_earlier_run=d.get("from_earlier_run", False),
        )


@dataclass(frozen=True)
class UserReport(_Dict):
    """One user's result: refused (nothing done), or the steps."""

    user: str
    dn: str | None
    refused: ErrorInfo | None
    steps: list[StepReport]
    complete: bool
    interrupted: bool = False
    changes: list[AttributeChange] | None = None
    changes_error: ErrorInfo | None = None
    sent_mail: SentMail | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UserReport:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        return cls(
            user=d["user"],
            dn=d.get("dn"),
            refused=_error(d.get("refused")),
            steps=[StepReport.from_dict(s) for s in d.get("steps", [])],
            complete=d["complete"],
            interrupted=d.get("interrupted", False),
            changes=_changes(d.get("changes")),
            changes_error=_error(d.get("changes_error")),
            sent_mail=SentMail.from_dict(d["sent_mail"]) if d.get("sent_mail") else None,
        )

    def step(self, step: Step) -> StepReport | None:
        """The report of `step`, if it ran (or was done by an earlier run)."""
        return next((s for s in self.steps if s.step == step), None)


@dataclass(frozen=True)
class ContainReport(_Dict):
    """The result of a containment (or a resume)."""

    incident: str
    users: list[UserReport]
    done: int
    failed: int
    not_revoked: list[str]
    password_handover: str
    journal: str
    journal_head: str
    cancelled: bool = False
    notes: list[str] = field(default_factory=list)
    pivot: PivotReport | None = None
    address_kicks: list[RevocationOutcome] = field(default_factory=list)
    notifications: list[NotificationOutcome] = field(default_factory=list)
    replicas: list[ReplicaCheck] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ContainReport:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        return cls(
            incident=d["incident"],
            users=[UserReport.from_dict(u) for u in d["users"]],
            done=d["done"],
            failed=d["failed"],
            not_revoked=list(d.get("not_revoked", [])),
            password_handover=d["password_handover"],
            journal=d["journal"],
            journal_head=d["journal_head"],
            cancelled=d.get("cancelled", False),
            notes=list(d.get("notes", [])),
            pivot=PivotReport.from_dict(d["pivot"]) if d.get("pivot") else None,
            address_kicks=[RevocationOutcome.from_dict(k) for k in d.get("address_kicks", [])],
            notifications=[NotificationOutcome.from_dict(n) for n in d.get("notifications", [])],
            replicas=[ReplicaCheck.from_dict(r) for r in d.get("replicas", [])],
        )

    def needs_attention(self) -> list[UserReport]:
        """The users that are not fully contained (refused, a step failed, or interrupted)."""
        return [u for u in self.users if not u.complete]


@dataclass(frozen=True)
class PlannedStep(_Dict):
    """One step of a dry run: the predicted status and the exact modifications, in words."""

    step: Step
    predicted: StepStatus
    actions: list[str]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlannedStep:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        return cls(step=Step(d["step"]), predicted=StepStatus(d["predicted"]), actions=list(d["actions"]))


@dataclass(frozen=True)
class UserPlan(_Dict):
    """One user's plan."""

    user: str
    dn: str | None
    refused: ErrorInfo | None
    steps: list[PlannedStep]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UserPlan:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        return cls(
            user=d["user"],
            dn=d.get("dn"),
            refused=_error(d.get("refused")),
            steps=[PlannedStep.from_dict(s) for s in d.get("steps", [])],
        )


@dataclass(frozen=True)
class PlanReport(_Dict):
    """The dry run's result."""

    users: list[UserPlan]
    pivot: PivotReport | None = None
    address_actions: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlanReport:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        return cls(
            users=[UserPlan.from_dict(u) for u in d["users"]],
            pivot=PivotReport.from_dict(d["pivot"]) if d.get("pivot") else None,
            address_actions=list(d.get("address_actions", [])),
        )


@dataclass(frozen=True)
class ReleaseReport(_Dict):
    """The result of a release."""

    incident: str
    dn: str
    change: Change
    kept: list[str]
    notifications: list[NotificationOutcome] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReleaseReport:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        return cls(
            incident=d["incident"],
            dn=d["dn"],
            change=Change.from_dict(d["change"]),
            kept=list(d["kept"]),
            notifications=[NotificationOutcome.from_dict(n) for n in d.get("notifications", [])],
        )


@dataclass(frozen=True)
class LockState(_Dict):
    """``unlocked``, ``locked`` (until an administrator unlocks) or ``locked_out`` (since)."""

    state: str
    since: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LockState:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        return cls(state=d["state"], since=d.get("since"))


@dataclass(frozen=True)
class AccountState(_Dict):
    """What an account looks like right now."""

    dn: str
    flavour: str
    lock: LockState
    must_change: bool
    mfa_required: bool | None
    password_changed_at: str | None
    protected_groups: list[str]
    attributes: Attributes
    mail_rules: list[MailRule] = field(default_factory=list)
    changes: list[AttributeChange] | None = None
    replicas: list[ReplicaState] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AccountState:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        return cls(
            dn=d["dn"],
            flavour=d["flavour"],
            lock=LockState.from_dict(d["lock"]),
            must_change=d["must_change"],
            mfa_required=d.get("mfa_required"),
            password_changed_at=d.get("password_changed_at"),
            protected_groups=list(d.get("protected_groups", [])),
            attributes=d.get("attributes", {}),
            mail_rules=[MailRule.from_dict(m) for m in d.get("mail_rules", [])],
            changes=_changes(d.get("changes")),
            replicas=[ReplicaState.from_dict(r) for r in d.get("replicas", [])],
        )


@dataclass(frozen=True)
class BadRecord(_Dict):
    """Where a journal's chain breaks."""

    line: int
    reason: str


@dataclass(frozen=True)
class VerifyReport(_Dict):
    """The result of ``verify_journal``: records read, head hash, first bad record."""

    records: int
    head: str
    first_bad: BadRecord | None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VerifyReport:
        """Builds it from its JSON shape (the CLI\'s ``--json``, ``to_dict()``)."""
        bad = d.get("first_bad")
        return cls(records=d["records"], head=d["head"], first_bad=BadRecord(**bad) if bad else None)

    @property
    def intact(self) -> bool:
        """Whether the whole chain verified."""
        return self.first_bad is None


@dataclass(frozen=True)
class Progress(_Dict):
    """Progress of a bulk run, passed to ``progress`` after each user."""

    total: int
    finished: int
    failed: int
    user: str


@dataclass(frozen=True)
class Enrolment:
    """A new (pending) TOTP enrolment. ``uri``, ``qr_svg``, ``qr_terminal`` and ``secret``
    (base32) hold the secret: show them to the user once."""

    uri: Secret
    qr_svg: Secret
    qr_terminal: Secret
    secret: Secret
    digits: int
    period: int
    algorithm: str


@dataclass(frozen=True)
class Verified(_Dict):
    """A code accepted: its time step (now used) and whether it activated the enrolment."""

    step: int
    activated: bool
