//! The exit codes: one meaning each, as the README and the guide (docs/guide/src/cli.md) list them.

use std::process::ExitCode;

use cadenas::ErrorKind;

/// How a command ended, as its exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: done.
    Done = 0,
    /// 1: anything else (`check`: warnings only).
    Other = 1,
    /// 2: bad usage, found before anything was contacted (clap's usage errors too).
    Usage = 2,
    /// 3: the configuration, the MFA database or its key.
    Config = 3,
    /// 4: the directory could not be reached (network, TLS) or refused the service account.
    Directory = 4,
    /// 5: the user was refused or not found, nothing changed; or a release was refused.
    Refused = 5,
    /// 6: containment incomplete: something changed and something else did not.
    Incomplete = 6,
    /// 7: an MFA code (or recovery code) was refused.
    MfaRefused = 7,
    /// 8: the journal's hash chain (or a MAC, or the expected head) does not verify.
    Tampered = 8,
    /// 9: `check` or `drill`: a check failed (the lines marked FAIL say what to fix).
    CheckFailed = 9,
}

impl Exit {
    /// The exit for a command that failed with an error of `kind`.
    pub fn of(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::Config | ErrorKind::MfaStore | ErrorKind::MfaKey => Exit::Config,
            ErrorKind::MfaBadCode
            | ErrorKind::MfaReplayed
            | ErrorKind::MfaThrottled
            | ErrorKind::MfaNotEnrolled
            | ErrorKind::MfaRecoveryCode => Exit::MfaRefused,
            ErrorKind::JournalTampered => Exit::Tampered,
            ErrorKind::Connect
            | ErrorKind::Tls
            | ErrorKind::Timeout
            | ErrorKind::ServiceBind
            | ErrorKind::InsecureTransport
            | ErrorKind::UnsupportedDirectory => Exit::Directory,
            ErrorKind::ReleaseRefused
            | ErrorKind::NothingToResume
            | ErrorKind::InvalidUserName
            | ErrorKind::UserNotFound
            | ErrorKind::AmbiguousUser
            | ErrorKind::OutOfScope
            | ErrorKind::ProtectedAccount
            | ErrorKind::InvalidInput => Exit::Refused,
            _ => Exit::Other,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_has_a_documented_exit() {
        for k in ErrorKind::ALL {
            let code = Exit::of(*k) as u8;
            assert!(matches!(code, 1 | 3 | 4 | 5 | 7 | 8), "{k:?} -> {code}");
        }
        assert_eq!(Exit::of(ErrorKind::Tls), Exit::Directory);
        assert_eq!(Exit::of(ErrorKind::InvalidUserName), Exit::Refused);
    }
}
