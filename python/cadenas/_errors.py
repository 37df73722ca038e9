"""The exceptions of ``cadenas``: one base, :class:`CadenasError`, and one subclass per error
kind of the Rust core, each carrying the kind's stable numeric ``code``. Match on the class
(or on ``code``), never on the message text."""

from __future__ import annotations


class CadenasError(Exception):
    """Base of every error raised by cadenas.

    Attributes:
        kind: the stable snake_case name of the error kind (``"user_not_found"``).
        code: the stable numeric code (``206``), the same in Rust, the CLI's ``--json`` and C.
        message: the human-readable message, without kind and code. Never holds a secret.
        ldap_rc: the LDAP result code when a directory server answered, else ``None``.
        ldap_text: the server's diagnostic text when it answered, else ``None``.
    """

    kind: str = "internal"
    code: int = 100

    def __init__(
        self,
        message: str,
        *,
        kind: str | None = None,
        code: int | None = None,
        ldap_rc: int | None = None,
        ldap_text: str | None = None,
        display: str | None = None,
    ) -> None:
        super().__init__(display or message)
        self.message = message
        if kind is not None:
            self.kind = kind
        if code is not None:
            self.code = code
        self.ldap_rc = ldap_rc
        self.ldap_text = ldap_text


class Internal(CadenasError):
    """A bug, or an OS facility (such as the random source) failed."""

    kind = "internal"
    code = 100


class Config(CadenasError):
    """The configuration is missing, unreadable or inconsistent."""

    kind = "config"
    code = 101


class InvalidInput(CadenasError, ValueError):
    """An argument was refused before anything was sent (also a ValueError)."""

    kind = "invalid_input"
    code = 102


class Io(CadenasError):
    """A local file could not be read or written."""

    kind = "io"
    code = 103


class InvalidContext(CadenasError):
    """A handle created before fork() was used in the child process."""

    kind = "invalid_context"
    code = 104


class Connect(CadenasError):
    """The directory server could not be reached."""

    kind = "connect"
    code = 200


class Tls(CadenasError):
    """The TLS handshake or certificate verification failed."""

    kind = "tls"
    code = 201


class Timeout(CadenasError):
    """An operation did not complete in time."""

    kind = "timeout"
    code = 202


class ServiceBind(CadenasError):
    """The responder's own service account could not bind."""

    kind = "service_bind"
    code = 203


class InsecureTransport(CadenasError):
    """A password would cross unencrypted LDAP without an explicit opt-in."""

    kind = "insecure_transport"
    code = 204


class InvalidUserName(CadenasError, ValueError):
    """A user name contains filter or DN syntax, or control characters (also a ValueError)."""

    kind = "invalid_user_name"
    code = 205


class UserNotFound(CadenasError):
    """No entry matches the user name under the configured base DNs."""

    kind = "user_not_found"
    code = 206


class AmbiguousUser(CadenasError):
    """More than one entry matches the user name."""

    kind = "ambiguous_user"
    code = 207


class OutOfScope(CadenasError):
    """The entry is outside every configured base DN."""

    kind = "out_of_scope"
    code = 208


class Refused(CadenasError):
    """The server refused an operation (see ldap_rc and ldap_text)."""

    kind = "refused"
    code = 209


class UnexpectedResponse(CadenasError):
    """The server's answer could not be understood."""

    kind = "unexpected_response"
    code = 210


class UnsupportedDirectory(CadenasError):
    """The server's flavour does not support the operation."""

    kind = "unsupported_directory"
    code = 211


class LockIneffective(CadenasError):
    """A lock would be silently ignored by the server's password policy."""

    kind = "lock_ineffective"
    code = 212


class ProtectedAccount(CadenasError):
    """The account is protected from automated response."""

    kind = "protected_account"
    code = 213


class RevokerUnreachable(CadenasError):
    """A revocation endpoint (doveadm API, webhook) could not be reached."""

    kind = "revoker_unreachable"
    code = 300


class RevokerAuth(CadenasError):
    """A revocation endpoint refused our credentials."""

    kind = "revoker_auth"
    code = 301


class RevokerProtocol(CadenasError):
    """A revocation endpoint answered something that could not be understood."""

    kind = "revoker_protocol"
    code = 302


class RevokerFailed(CadenasError):
    """A revocation endpoint or command reported failure."""

    kind = "revoker_failed"
    code = 303


class MfaNotEnrolled(CadenasError):
    """The user has no (active) TOTP enrolment."""

    kind = "mfa_not_enrolled"
    code = 400


class MfaBadCode(CadenasError):
    """The code is malformed or does not match."""

    kind = "mfa_bad_code"
    code = 401


class MfaReplayed(CadenasError):
    """The code's time step was already used (replay)."""

    kind = "mfa_replayed"
    code = 402


class MfaThrottled(CadenasError):
    """Too many failures: verification refused until the cool-down ends."""

    kind = "mfa_throttled"
    code = 403


class MfaStore(CadenasError):
    """The MFA database is missing, locked, corrupted or unwritable."""

    kind = "mfa_store"
    code = 404


class MfaKey(CadenasError):
    """The at-rest key file is missing, malformed, or not the database's key."""

    kind = "mfa_key"
    code = 405


class MfaRecoveryCode(CadenasError):
    """The recovery code is not valid (or was already used)."""

    kind = "mfa_recovery_code"
    code = 406


class ReleaseRefused(CadenasError):
    """Release refused: no active MFA enrolment and no override, or no containment record."""

    kind = "release_refused"
    code = 500


class NothingToResume(CadenasError):
    """The journal holds no unfinished run to resume."""

    kind = "nothing_to_resume"
    code = 501


class Journal(CadenasError):
    """The journal could not be opened, locked, written or read."""

    kind = "journal"
    code = 600


class JournalTampered(CadenasError):
    """The journal's hash chain is broken."""

    kind = "journal_tampered"
    code = 601


class NotifyFailed(CadenasError):
    """A notification could not be delivered (the server refused it, or the channel failed)."""

    kind = "notify_failed"
    code = 700


BY_KIND: dict[str, type[CadenasError]] = {cls.kind: cls for cls in CadenasError.__subclasses__()}


def _from_core(
    kind: str, code: int, message: str, display: str, ldap_rc: int | None, ldap_text: str | None
) -> CadenasError:
    """Builds the exception for a core error (called from Rust)."""
    cls = BY_KIND.get(kind, CadenasError)
    return cls(message, kind=kind, code=code, ldap_rc=ldap_rc, ldap_text=ldap_text, display=display)
