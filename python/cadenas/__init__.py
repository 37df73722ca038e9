"""Cadenas: compromised-credential response for LDAP and Active Directory.

When an account's password is stolen, one call takes the attacker out: lock the account,
reset the password to a strong random one with a forced change, revoke live sessions and
cached credentials, require MFA, journal every step — and later release the account to
exactly its original flags::

    import cadenas

    responder = cadenas.Responder.from_config("/etc/cadenas/cadenas.toml")
    print(responder.plan(["jdupont"]).users[0].steps)          # changes nothing
    report = responder.contain(["jdupont"], password_file="/root/incident/pw.tsv")
    for user in report.needs_attention():
        print(user.user, user.refused or [s for s in user.steps if not s.status.is_done])

Every call that touches the network or the disk releases the GIL. Errors are subclasses of
:class:`CadenasError` with a stable ``code``. Secrets (new passwords, TOTP secrets, recovery
codes) are :class:`Secret` objects: redacted in ``repr`` and ``str``, read with ``reveal()``.
Log records go to the ``cadenas`` logger (never with a secret).
"""

from __future__ import annotations

from . import _errors
from ._cadenas import (
    Authenticator,
    Mfa,
    Responder,
    Secret,
    WatchService,
    error_kinds,
    hotp,
    totp_code,
    totp_verify,
    watch_alerts,
    watch_replay,
)
from ._cadenas import verify_journal as _verify_journal
from ._errors import (
    AmbiguousUser,
    CadenasError,
    Config,
    Connect,
    InsecureTransport,
    Internal,
    InvalidContext,
    InvalidInput,
    InvalidUserName,
    Io,
    Journal,
    JournalTampered,
    LockIneffective,
    MfaBadCode,
    MfaKey,
    MfaNotEnrolled,
    MfaRecoveryCode,
    MfaReplayed,
    MfaStore,
    MfaThrottled,
    NothingToResume,
    NotifyFailed,
    OutOfScope,
    ProtectedAccount,
    Refused,
    ReleaseRefused,
    RevokerAuth,
    RevokerFailed,
    RevokerProtocol,
    RevokerUnreachable,
    ServiceBind,
    Timeout,
    Tls,
    UnexpectedResponse,
    UnsupportedDirectory,
    UserNotFound,
)
from ._incident import (
    AccountOutcome,
    AccountRecord,
    AttackerAddress,
    Curve,
    IncidentReport,
    NotificationLine,
    Problem,
    Proof,
    RunSummary,
    StepLine,
    Summary,
    Timeline,
    TimelineRow,
)
from ._reports import (
    AccountState,
    AttributeChange,
    AuthOutcome,
    BadRecord,
    Change,
    ContainReport,
    Enrolment,
    ErrorInfo,
    HeldMail,
    LdapDiagnostic,
    LockState,
    MailRule,
    NotificationOutcome,
    NotifyEvent,
    PivotReport,
    PlannedStep,
    PlanReport,
    Progress,
    QueuedMail,
    Redirect,
    ReleaseReport,
    ReplicaCheck,
    ReplicaState,
    RevocationOutcome,
    RevocationStatus,
    SentMail,
    Sighting,
    SightingKind,
    Step,
    StepDetail,
    StepReport,
    StepStatus,
    UserPlan,
    UserReport,
    Verified,
    VerifyReport,
)
from ._watch import Alert, AlertRule, AutoOutcome, HandledAlert

__version__ = "0.1.0"


def verify_journal(path: str | None = None, *, config: str | None = None) -> VerifyReport:
    """Recomputes the journal's hash chain (and every record's MAC when ``config`` has a
    ``[journal] key_file``): the file at ``path``, or the journal ``config`` names — a file,
    or the PostgreSQL database several hosts share. ``report.first_bad`` names the first bad
    line."""
    report: VerifyReport = _verify_journal(path, config=config)
    return report


def authenticate(config: str, user: str, password: str | Secret, code: str | None = None) -> AuthOutcome:
    """Password (+ TOTP code for members of the MFA group) check, with a fresh connection.
    For many checks, keep an :class:`Authenticator` instead."""
    outcome: AuthOutcome = Authenticator.from_config(config).authenticate(user, password, code)
    return outcome


_missing = [name for name, _code in error_kinds() if name not in _errors.BY_KIND]
if _missing:  # a core newer than this package: fail loudly rather than raise the base class
    raise ImportError(f"cadenas: no exception class for error kind(s) {_missing}")

__all__ = [
    "AccountOutcome",
    "AccountRecord",
    "AccountState",
    "Alert",
    "AlertRule",
    "AmbiguousUser",
    "AttackerAddress",
    "AttributeChange",
    "AuthOutcome",
    "Authenticator",
    "AutoOutcome",
    "BadRecord",
    "CadenasError",
    "Change",
    "Config",
    "Connect",
    "ContainReport",
    "Curve",
    "Enrolment",
    "ErrorInfo",
    "HandledAlert",
    "HeldMail",
    "IncidentReport",
    "InsecureTransport",
    "Internal",
    "InvalidContext",
    "InvalidInput",
    "InvalidUserName",
    "Io",
    "Journal",
    "JournalTampered",
    "LdapDiagnostic",
    "LockIneffective",
    "LockState",
    "MailRule",
    "Mfa",
    "MfaBadCode",
    "MfaKey",
    "MfaNotEnrolled",
    "MfaRecoveryCode",
    "MfaReplayed",
    "MfaStore",
    "MfaThrottled",
    "NothingToResume",
    "NotificationLine",
    "NotificationOutcome",
    "NotifyEvent",
    "NotifyFailed",
    "OutOfScope",
    "PivotReport",
    "PlanReport",
    "PlannedStep",
    "Problem",
    "Progress",
    "Proof",
    "ProtectedAccount",
    "QueuedMail",
    "Redirect",
    "Refused",
    "ReleaseRefused",
    "ReleaseReport",
    "ReplicaCheck",
    "ReplicaState",
    "Responder",
    "RevocationOutcome",
    "RevocationStatus",
    "RevokerAuth",
    "RevokerFailed",
    "RevokerProtocol",
    "RevokerUnreachable",
    "RunSummary",
    "Secret",
    "SentMail",
    "ServiceBind",
    "Sighting",
    "SightingKind",
    "Step",
    "StepDetail",
    "StepLine",
    "StepReport",
    "StepStatus",
    "Summary",
    "Timeline",
    "TimelineRow",
    "Timeout",
    "Tls",
    "UnexpectedResponse",
    "UnsupportedDirectory",
    "UserNotFound",
    "UserPlan",
    "UserReport",
    "Verified",
    "VerifyReport",
    "WatchService",
    "authenticate",
    "hotp",
    "totp_code",
    "totp_verify",
    "verify_journal",
    "watch_alerts",
    "watch_replay",
]
