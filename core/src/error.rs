//! One error type for the whole library, with a stable numeric code per kind.
//!
//! Bindings (Python exceptions, C result codes) map by [`ErrorKind::code`]. Codes are grouped
//! in hundred-blocks by area and are **never reused**; a new kind gets a new number.
//!
//! The kinds, their codes, names and meanings are one table (`error_kinds!` below); the C
//! `cadenas_result` values and the Python exception classes are generated from it by
//! `cargo run -p cadenas-codegen`, and `make lint` fails when they are out of step.

use std::fmt;
use std::sync::Arc;

/// The one table of error kinds: variant, stable code, stable name, meaning. Everything else
/// is generated from it — the enum here, and (by `cargo run -p cadenas-codegen`) the C
/// header's `cadenas_result` values and the Python exception classes, which a test keeps in
/// step. Codes are grouped by area and never reused; a new kind gets a new number.
macro_rules! error_kinds {
    ($($variant:ident = $code:literal, $name:literal, $doc:literal;)*) => {
        /// What went wrong, as a closed set of kinds with stable codes (`E` + [`code`](Self::code)).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorKind {
            $(
                #[doc = concat!("`", $code, "` `", $name, "`: ", $doc)]
                $variant,
            )*
        }

        impl ErrorKind {
            /// Every kind, in code order.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$variant),*];

            /// The stable numeric code. Never reused.
            pub const fn code(self) -> u32 {
                match self {
                    $(ErrorKind::$variant => $code,)*
                }
            }

            /// A stable snake_case name, for JSON output, logs and the Python exception's
            /// `kind`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(ErrorKind::$variant => $name,)*
                }
            }

            /// What the kind means, one English sentence (the C `cadenas_result_message` text
            /// and the Python class's docstring).
            pub const fn meaning(self) -> &'static str {
                match self {
                    $(ErrorKind::$variant => $doc,)*
                }
            }

            /// The variant's name in CamelCase (`"UserNotFound"`): the Python exception class
            /// and, upper-cased with underscores, the C `CADENAS_RESULT_*` value.
            pub const fn variant(self) -> &'static str {
                match self {
                    $(ErrorKind::$variant => stringify!($variant),)*
                }
            }
        }
    };
}

error_kinds! {
    Internal = 100, "internal", "A bug, or an OS facility (such as the random source) failed.";
    Config = 101, "config", "The configuration is missing, unreadable or inconsistent.";
    InvalidInput = 102, "invalid_input", "An argument was refused before anything was sent.";
    Io = 103, "io", "A local file could not be read or written.";
    InvalidContext = 104, "invalid_context", "A blocking call was made from inside an async runtime or one of the library's callbacks, or a handle created before a `fork()` was used in the child (create a new one).";
    Connect = 200, "connect", "The directory server could not be reached.";
    Tls = 201, "tls", "The TLS handshake or certificate verification failed.";
    Timeout = 202, "timeout", "An operation did not complete in time.";
    ServiceBind = 203, "service_bind", "The responder's own service account could not bind.";
    InsecureTransport = 204, "insecure_transport", "A password would cross unencrypted LDAP without an explicit opt-in.";
    InvalidUserName = 205, "invalid_user_name", "A user name contains filter or DN syntax, or control characters.";
    UserNotFound = 206, "user_not_found", "No entry matches the user name under the configured base DNs.";
    AmbiguousUser = 207, "ambiguous_user", "More than one entry matches the user name.";
    OutOfScope = 208, "out_of_scope", "The entry is outside every configured base DN.";
    Refused = 209, "refused", "The server refused an operation (its LDAP result code and diagnostic are kept).";
    UnexpectedResponse = 210, "unexpected_response", "The server's answer could not be understood.";
    UnsupportedDirectory = 211, "unsupported_directory", "The server's flavour does not support the operation.";
    LockIneffective = 212, "lock_ineffective", "A lock would be silently ignored by the server's password policy.";
    ProtectedAccount = 213, "protected_account", "The account is protected from automated response.";
    RevokerUnreachable = 300, "revoker_unreachable", "A revocation endpoint (doveadm API, webhook) could not be reached.";
    RevokerAuth = 301, "revoker_auth", "A revocation endpoint refused our credentials (API key, HTTP 401/403).";
    RevokerProtocol = 302, "revoker_protocol", "A revocation endpoint answered something that could not be understood.";
    RevokerFailed = 303, "revoker_failed", "A revocation endpoint or command reported failure.";
    MfaNotEnrolled = 400, "mfa_not_enrolled", "The user has no (active) TOTP enrolment.";
    MfaBadCode = 401, "mfa_bad_code", "The code is malformed or does not match.";
    MfaReplayed = 402, "mfa_replayed", "The code's time step was already used (replay).";
    MfaThrottled = 403, "mfa_throttled", "Too many failures: verification refused until the cool-down ends.";
    MfaStore = 404, "mfa_store", "The MFA database is missing, locked, corrupted or unwritable.";
    MfaKey = 405, "mfa_key", "The at-rest key file is missing, malformed, or not the database's key.";
    MfaRecoveryCode = 406, "mfa_recovery_code", "The recovery code is not valid (or was already used).";
    ReleaseRefused = 500, "release_refused", "Release refused: no active MFA enrolment and no override, or no containment record.";
    NothingToResume = 501, "nothing_to_resume", "The journal holds no unfinished run to resume.";
    Journal = 600, "journal", "The journal could not be opened, locked, written or read.";
    JournalTampered = 601, "journal_tampered", "The journal's hash chain is broken.";
    NotifyFailed = 700, "notify_failed", "A notification could not be delivered (the server refused it, or the channel failed).";
}

impl ErrorKind {
    /// The kind with this code, if any.
    pub fn from_code(code: u32) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.code() == code)
    }

    /// The kind with this [`name`](Self::name), if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.name() == name)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An LDAP result kept as data: result code, diagnostic text, matched DN.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct LdapDiagnostic {
    /// RFC 4511 result code (e.g. 49 invalid credentials, 50 insufficient access).
    pub rc: u32,
    /// The server's diagnostic message (AD puts `data 52e`-style codes here).
    pub text: String,
    /// The matched DN the server returned, often empty.
    pub matched: String,
}

/// The library's error: a [`kind`](Error::kind) with a stable code, a message for humans,
/// the LDAP result when a server answered, and the underlying cause (I/O, SQLite, TLS, LDAP)
/// as its [`source`](std::error::Error::source). Never carries a secret.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{} (E{}): {message}{}", kind.name(), kind.code(), LdapSuffix(ldap.as_ref()))]
pub struct Error {
    kind: ErrorKind,
    message: String,
    ldap: Option<LdapDiagnostic>,
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

/// Two errors are equal when kind, message and LDAP result are (the cause is not compared).
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.message == other.message && self.ldap == other.ldap
    }
}

impl Eq for Error {}

/// ` [LDAP result 50: text]`, or nothing.
struct LdapSuffix<'a>(Option<&'a LdapDiagnostic>);

impl fmt::Display for LdapSuffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = self.0 {
            write!(f, " [LDAP result {}", l.rc)?;
            if !l.text.is_empty() {
                write!(f, ": {}", l.text)?;
            }
            f.write_str("]")?;
        }
        Ok(())
    }
}

impl Error {
    /// A new error of `kind`. `message` must not contain secrets.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            ldap: None,
            source: None,
        }
    }

    /// Keeps `cause` as the error's [`source`](std::error::Error::source). The cause must not
    /// hold a secret either (I/O, SQLite, TLS and LDAP errors do not).
    pub fn with_source(
        mut self,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        self.source = Some(Arc::from(cause.into()));
        self
    }

    /// Attaches the server's LDAP result.
    pub fn with_ldap(mut self, rc: u32, text: impl Into<String>, matched: impl Into<String>) -> Self {
        self.ldap = Some(LdapDiagnostic {
            rc,
            text: text.into(),
            matched: matched.into(),
        });
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The stable numeric code of the kind.
    pub fn code(&self) -> u32 {
        self.kind.code()
    }

    /// The human-readable message, without the LDAP part.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The LDAP result, when a server answered.
    pub fn ldap(&self) -> Option<&LdapDiagnostic> {
        self.ldap.as_ref()
    }
}

/// Serialises as `{"kind", "code", "message", "ldap"}` for reports, the journal and `--json`
/// output (`message` without the kind and code, which have their own fields).
impl serde::Serialize for Error {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Error", 4)?;
        st.serialize_field("kind", self.kind.name())?;
        st.serialize_field("code", &self.kind.code())?;
        st.serialize_field("message", &self.message)?;
        st.serialize_field("ldap", &self.ldap)?;
        st.end()
    }
}

/// Reads what [`Serialize`](serde::Serialize) wrote; the kind comes from the stable code (an
/// unknown code — a newer writer — reads as [`ErrorKind::Internal`]).
impl<'de> serde::Deserialize<'de> for Error {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Wire {
            code: u32,
            message: String,
            #[serde(default)]
            ldap: Option<LdapDiagnostic>,
        }
        let w = Wire::deserialize(d)?;
        Ok(Self {
            kind: ErrorKind::from_code(w.code).unwrap_or(ErrorKind::Internal),
            message: w.message,
            ldap: w.ldap,
            source: None,
        })
    }
}

/// Shorthand for `Result<T, cadenas::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_stable_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for k in ErrorKind::ALL {
            assert!(seen.insert(k.code()), "duplicate code {}", k.code());
            assert_eq!(ErrorKind::from_code(k.code()), Some(*k));
        }
        // Pinned: bindings depend on these numbers.
        assert_eq!(ErrorKind::InsecureTransport.code(), 204);
        assert_eq!(ErrorKind::InvalidUserName.code(), 205);
        assert_eq!(ErrorKind::Refused.code(), 209);
        assert_eq!(ErrorKind::from_code(999), None);
        for k in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_name(k.name()), Some(*k));
        }
    }

    #[test]
    fn the_cause_is_kept_as_source() {
        use std::error::Error as _;
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let e = Error::new(ErrorKind::Io, "cannot write the journal").with_source(io);
        assert_eq!(e.source().map(|s| s.to_string()).as_deref(), Some("denied"));
        assert!(Error::new(ErrorKind::Io, "x").source().is_none());
    }

    #[test]
    fn errors_round_trip_through_json() {
        let e = Error::new(ErrorKind::Refused, "modify refused").with_ldap(50, "no write access", "");
        let back: Error = serde_json::from_str(&serde_json::to_string(&e).expect("ser")).expect("de");
        assert_eq!(back, e);
    }

    #[test]
    fn display_includes_kind_code_and_ldap_result() {
        let e = Error::new(ErrorKind::Refused, "modify refused").with_ldap(50, "no write access", "");
        assert_eq!(
            e.to_string(),
            "refused (E209): modify refused [LDAP result 50: no write access]"
        );
    }
}
