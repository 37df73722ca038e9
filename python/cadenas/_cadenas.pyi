"""The Rust half of cadenas (see the package docstring)."""

from collections.abc import Iterable, Sequence
from os import PathLike
from typing import Any, Callable, final

from typing_extensions import TypeAlias

from ._incident import IncidentReport
from ._reports import (
    AccountState,
    AuthOutcome,
    ContainReport,
    Enrolment,
    PivotReport,
    PlanReport,
    Progress,
    ReleaseReport,
    Verified,
    VerifyReport,
)
from ._watch import Alert, HandledAlert

__all__ = [
    "Authenticator",
    "Mfa",
    "Responder",
    "Secret",
    "WatchService",
    "_render_report",
    "error_kinds",
    "hotp",
    "totp_code",
    "totp_verify",
    "verify_journal",
    "watch_alerts",
    "watch_replay",
]

_Path: TypeAlias = str | PathLike[str]

@final
class Secret:
    """A secret value whose repr() and str() never show it; call reveal() to read it."""

    def __new__(cls, value: str) -> Secret: ...
    def reveal(self) -> str: ...
    def __len__(self) -> int: ...
    def __reduce__(self) -> Any: ...

@final
class Responder:
    """The incident responder: contain, plan, release, resume, status."""

    @staticmethod
    def from_config(path: _Path, *, journal: _Path | None = None) -> Responder: ...
    @staticmethod
    def from_toml(text: str, *, journal: _Path | None = None, base_dir: _Path | None = None) -> Responder: ...
    @property
    def journal(self) -> str | None: ...
    def contain(
        self,
        users: str | Iterable[str],
        *,
        reset: bool = True,
        revoke: bool = True,
        require_mfa: bool = True,
        hold_mail: bool = True,
        password_file: _Path | None = None,
        on_password: Callable[[str, str, Secret], object] | None = None,
        progress: Callable[[Progress], object] | None = None,
        reason: str | None = None,
        incident: str | None = None,
        allow_protected: bool = False,
        concurrency: int = 32,
    ) -> ContainReport: ...
    def resume(
        self,
        *,
        incident: str | None = None,
        password_file: _Path | None = None,
        on_password: Callable[[str, str, Secret], object] | None = None,
        progress: Callable[[Progress], object] | None = None,
        concurrency: int = 32,
    ) -> ContainReport: ...
    def plan(self, users: str | Iterable[str], *, allow_protected: bool = False) -> PlanReport: ...
    def release(self, user: str, *, override_reason: str | None = None) -> ReleaseReport: ...
    def status(self, user: str, *, changes_since: str | None = None) -> AccountState: ...
    def report(self, incident: str, *, alert_at: str | None = None) -> IncidentReport: ...
    def sightings(
        self,
        ip: str,
        *,
        auth_logs: Sequence[_Path] | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> PivotReport: ...
    def plan_from(
        self,
        ip: str,
        *,
        auth_logs: Sequence[_Path] | None = None,
        since: str | None = None,
        until: str | None = None,
        allow_protected: bool = False,
    ) -> PlanReport: ...
    def contain_from(
        self,
        ip: str,
        *,
        auth_logs: Sequence[_Path] | None = None,
        since: str | None = None,
        until: str | None = None,
        password_file: _Path | None = None,
        on_password: Callable[[str, str, Secret], object] | None = None,
        progress: Callable[[Progress], object] | None = None,
        reason: str | None = None,
        incident: str | None = None,
        allow_protected: bool = False,
        concurrency: int = 32,
    ) -> ContainReport: ...

@final
class Mfa:
    """TOTP enrolment and verification over the [mfa] store of a config."""

    @staticmethod
    def from_config(path: _Path) -> Mfa: ...
    @staticmethod
    def from_toml(text: str, *, base_dir: _Path | None = None) -> Mfa: ...
    def enroll(self, user: str) -> Enrolment: ...
    def verify(self, user: str, code: str, *, now: int | None = None) -> Verified: ...
    def enrolment_state(self, user: str) -> str | None: ...
    def recovery_codes(self, user: str) -> list[Secret]: ...
    def use_recovery_code(self, user: str, code: str) -> None: ...
    def reset(self, user: str) -> bool: ...

@final
class Authenticator:
    """Password + TOTP checks against the directory and the MFA store."""

    @staticmethod
    def from_config(path: _Path) -> Authenticator: ...
    def authenticate(self, user: str, password: str | Secret, code: str | None = None) -> AuthOutcome: ...

@final
class WatchService:
    """The watcher as a service: each poll() reads what the [watch] logs gained, and tells,
    contains (where a rule may) and journals each new alert."""

    @staticmethod
    def from_config(path: _Path) -> WatchService: ...
    def poll(self) -> list[HandledAlert]: ...

def watch_replay(config: _Path, logs: Sequence[_Path], *, since: str | None = None) -> list[Alert]: ...
def watch_alerts(config: _Path, *, since: str | None = None) -> list[HandledAlert]: ...
def verify_journal(path: _Path | None = None, *, config: _Path | None = None) -> VerifyReport: ...
def _render_report(report: dict[str, Any], format: str, lang: str) -> str: ...
def totp_code(
    secret: bytes, time: int, *, digits: int = 6, period: int = 30, algorithm: str = "sha1"
) -> str: ...
def totp_verify(
    secret: bytes, code: str, time: int, *, digits: int = 6, period: int = 30, algorithm: str = "sha1"
) -> int | None: ...
def hotp(secret: bytes, counter: int, *, digits: int = 6, algorithm: str = "sha1") -> str: ...
def error_kinds() -> list[tuple[str, int]]: ...
