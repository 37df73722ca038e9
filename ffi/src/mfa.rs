//! `cadenas_mfa` (TOTP enrolment and verification with the durable replay guard, recovery
//! codes), `cadenas_authenticator` (password + code: what a PAM module calls) and
//! `cadenas_totp_code`.

use std::ffi::c_char;

use core_api::auth::AuthOutcome;
use core_api::blocking::Authenticator;
use core_api::mfa::totp::{self, Algorithm, TotpCode, TotpParams};
use core_api::mfa::{EnrolmentState, Mfa, NewEnrolment};
use core_api::{Password, Secret};

use crate::boundary::{
    borrow, copy_out, guard, guard_value, hand_out, not_null, opt_text, release, text, write_out, Failure,
};
use crate::config::{cadenas_config, config_ref};
use crate::result::cadenas_result;

/// The MFA service over the config's `[mfa]` store (opaque).
pub struct cadenas_mfa {
    _private: [u8; 0],
}

/// A new, pending TOTP enrolment to show the user once (opaque; holds the secret, zeroized
/// when freed).
pub struct cadenas_enrolment {
    _private: [u8; 0],
}

/// A list of secrets such as recovery codes (opaque; zeroized when freed).
pub struct cadenas_secret_list {
    _private: [u8; 0],
}

/// Password + code checks (opaque): a directory connection and the MFA store.
pub struct cadenas_authenticator {
    _private: [u8; 0],
}

/// Where a user's TOTP enrolment stands.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cadenas_enrolment_state {
    /// No enrolment.
    None = 0,
    /// Enrolled, waiting for a first code to confirm the device.
    Pending = 1,
    /// Confirmed: codes are verified.
    Active = 2,
}

/// What a login with password + code amounts to (`cadenas_authenticate`). Only
/// `CADENAS_AUTH_OUTCOME_OK` lets the user in.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cadenas_auth_outcome {
    /// Password right, and the code too when MFA is required.
    Ok = 0,
    /// Wrong password, or unknown user (the two are not told apart).
    BadPassword = 1,
    /// The password must be changed first.
    MustChange = 2,
    /// The account is locked or disabled (contained, for instance).
    Locked = 3,
    /// The password has expired.
    Expired = 4,
    /// The user must give a TOTP code and gave none.
    MfaRequired = 5,
    /// The user must use MFA and has no active enrolment.
    MfaNotEnrolled = 6,
    /// The code does not match.
    BadCode = 7,
    /// The code (or a later one) was already used: a replay.
    ReplayedCode = 8,
    /// Too many failures: refused until the cool-down ends.
    Throttled = 9,
}

impl cadenas_auth_outcome {
    fn of(o: &AuthOutcome) -> Self {
        match o {
            AuthOutcome::Ok => Self::Ok,
            AuthOutcome::BadPassword => Self::BadPassword,
            AuthOutcome::MustChange => Self::MustChange,
            AuthOutcome::Locked => Self::Locked,
            AuthOutcome::Expired => Self::Expired,
            AuthOutcome::MfaRequired => Self::MfaRequired,
            AuthOutcome::MfaNotEnrolled => Self::MfaNotEnrolled,
            AuthOutcome::BadCode => Self::BadCode,
            AuthOutcome::ReplayedCode => Self::ReplayedCode,
            AuthOutcome::Throttled => Self::Throttled,
            // An outcome added to the core is a refusal here until it is mapped.
            _ => Self::BadPassword,
        }
    }
}

/// TOTP hash functions (`cadenas_totp_code`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cadenas_totp_algorithm {
    /// HMAC-SHA1: what every authenticator app supports.
    Sha1 = 1,
    /// HMAC-SHA256.
    Sha256 = 2,
    /// HMAC-SHA512.
    Sha512 = 3,
}

fn mfa_ref<'a>(m: *const cadenas_mfa) -> Result<&'a Mfa, Failure> {
    borrow::<Mfa, _>(m, "mfa")
}

/// Opens the `[mfa]` store of `config`; `create`: make the database and its key if missing
/// (an enrolment tool), otherwise a missing store is `CADENAS_RESULT_MFA_STORE` (a login
/// path must never start from an empty store).
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_mfa_open(
    config: *const cadenas_config,
    create: bool,
    mfa_out: *mut *mut cadenas_mfa,
) -> cadenas_result {
    guard(|| {
        let cfg = config_ref(config)?;
        let m = cfg
            .mfa
            .as_ref()
            .ok_or_else(|| Failure::new(cadenas_result::Config, "the config has no [mfa] section"))?;
        not_null(mfa_out, "mfa_out")?;
        hand_out(mfa_out, Mfa::open(m, create)?, "mfa_out")
    })
}

/// Frees the MFA service (NULL and a handle freed already are ignored).
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_mfa_free(mfa: *mut cadenas_mfa) {
    guard_value((), || release::<Mfa, _>(mfa));
}

/// A new pending enrolment for `user` (its login name), replacing any other: an attacker's
/// device stops working. The first verified code activates it.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_mfa_enroll(
    mfa: *const cadenas_mfa,
    user: *const c_char,
    enrolment_out: *mut *mut cadenas_enrolment,
) -> cadenas_result {
    guard(|| {
        let m = mfa_ref(mfa)?;
        let user = text(user, "user")?;
        not_null(enrolment_out, "enrolment_out")?;
        hand_out(enrolment_out, m.enroll(user)?, "enrolment_out")
    })
}

fn enrolment_ref<'a>(e: *const cadenas_enrolment) -> Result<&'a NewEnrolment, Failure> {
    borrow::<NewEnrolment, _>(e, "enrolment")
}

/// Copies the enrolment's `otpauth://` URI (holds the secret: show it as a QR code, once)
/// into `buf`. Wipe your copy after use.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_enrolment_uri(
    enrolment: *const cadenas_enrolment,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> cadenas_result {
    guard(|| copy_out(enrolment_ref(enrolment)?.uri.expose_secret(), buf, len, out_n))
}

/// Copies the enrolment's secret, base32 without padding (what authenticator apps take for
/// manual entry), into `buf`. Wipe your copy after use.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_enrolment_secret(
    enrolment: *const cadenas_enrolment,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> cadenas_result {
    guard(|| {
        copy_out(
            enrolment_ref(enrolment)?.secret_base32().expose_secret(),
            buf,
            len,
            out_n,
        )
    })
}

/// Copies the enrolment's QR code as an SVG image into `buf` (holds the secret).
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_enrolment_qr_svg(
    enrolment: *const cadenas_enrolment,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> cadenas_result {
    guard(|| copy_out(enrolment_ref(enrolment)?.qr_svg.expose_secret(), buf, len, out_n))
}

/// Frees an enrolment and zeroizes its copy of the secret (NULL and a handle freed already
/// are ignored).
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_enrolment_free(enrolment: *mut cadenas_enrolment) {
    guard_value((), || release::<NewEnrolment, _>(enrolment));
}

fn verify_at(
    m: *const cadenas_mfa,
    user: *const c_char,
    code: *const c_char,
    now: Option<u64>,
) -> Result<(), Failure> {
    let m = mfa_ref(m)?;
    let user = text(user, "user")?;
    let code = text(code, "code")?;
    match now {
        Some(now) => m.verify_at(user, code, now)?,
        None => m.verify(user, code)?,
    };
    Ok(())
}

/// Verifies a TOTP code now (±1 step, constant time, throttled): `CADENAS_RESULT_OK`, or
/// `_MFA_BAD_CODE`, `_MFA_REPLAYED` (a code — or an earlier one — never works twice, across
/// every process of the host), `_MFA_THROTTLED`, `_MFA_NOT_ENROLLED`. The first good code
/// activates a pending enrolment.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_mfa_verify(
    mfa: *const cadenas_mfa,
    user: *const c_char,
    code: *const c_char,
) -> cadenas_result {
    guard(|| verify_at(mfa, user, code, None))
}

/// `cadenas_mfa_verify` at Unix time `unix_time` (for tests and for replaying a log).
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_mfa_verify_at(
    mfa: *const cadenas_mfa,
    user: *const c_char,
    code: *const c_char,
    unix_time: u64,
) -> cadenas_result {
    guard(|| verify_at(mfa, user, code, Some(unix_time)))
}

/// Writes where `user`'s enrolment stands to `*state_out`.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_mfa_enrolment_state(
    mfa: *const cadenas_mfa,
    user: *const c_char,
    state_out: *mut cadenas_enrolment_state,
) -> cadenas_result {
    guard(|| {
        let m = mfa_ref(mfa)?;
        let user = text(user, "user")?;
        not_null(state_out, "state_out")?;
        let state = match m.enrolment_state(user)? {
            None => cadenas_enrolment_state::None,
            Some(EnrolmentState::Pending) => cadenas_enrolment_state::Pending,
            Some(_) => cadenas_enrolment_state::Active,
        };
        write_out(state_out, state, "state_out")
    })
}

/// Drops `user`'s enrolment and recovery codes; `*had_out` (may be NULL) says whether there
/// was an enrolment.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_mfa_reset(
    mfa: *const cadenas_mfa,
    user: *const c_char,
    had_out: *mut bool,
) -> cadenas_result {
    guard(|| {
        let m = mfa_ref(mfa)?;
        let user = text(user, "user")?;
        let had = m.reset(user)?;
        if !had_out.is_null() {
            write_out(had_out, had, "had_out")?;
        }
        Ok(())
    })
}

/// A fresh set of single-use recovery codes for `user` (replacing the old set). Show them
/// once; only their hashes are stored.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_mfa_recovery_codes(
    mfa: *const cadenas_mfa,
    user: *const c_char,
    codes_out: *mut *mut cadenas_secret_list,
) -> cadenas_result {
    guard(|| {
        let m = mfa_ref(mfa)?;
        let user = text(user, "user")?;
        not_null(codes_out, "codes_out")?;
        let codes: Vec<Secret> = m
            .new_recovery_codes(user)?
            .iter()
            .map(|c| Secret::new(c.expose_secret().as_bytes().to_vec()))
            .collect();
        hand_out(codes_out, codes, "codes_out")
    })
}

/// Uses one recovery code (consumed atomically): `CADENAS_RESULT_OK` or
/// `_MFA_RECOVERY_CODE` (wrong, or used already), `_MFA_THROTTLED`.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_mfa_use_recovery_code(
    mfa: *const cadenas_mfa,
    user: *const c_char,
    code: *const c_char,
) -> cadenas_result {
    guard(|| {
        let m = mfa_ref(mfa)?;
        let (user, code) = (text(user, "user")?, text(code, "code")?);
        m.use_recovery_code(user, code)?;
        Ok(())
    })
}

fn secrets_ref<'a>(l: *const cadenas_secret_list) -> Result<&'a Vec<Secret>, Failure> {
    borrow::<Vec<Secret>, _>(l, "list")
}

/// The number of secrets in the list (0 for a handle that is not a live list).
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_secret_list_len(list: *const cadenas_secret_list) -> usize {
    guard_value(0, || secrets_ref(list).map_or(0, Vec::len))
}

/// Copies secret `index` into `buf`. Wipe your copy after use.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_secret_list_get(
    list: *const cadenas_secret_list,
    index: usize,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> cadenas_result {
    guard(|| {
        let s = secrets_ref(list)?.get(index).ok_or_else(|| {
            Failure::new(
                cadenas_result::OutOfRange,
                format!("index {index} is past the end of the list"),
            )
        })?;
        copy_out(s.expose_secret(), buf, len, out_n)
    })
}

/// Frees a list and zeroizes its secrets (NULL and a list freed already are ignored).
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_secret_list_free(list: *mut cadenas_secret_list) {
    guard_value((), || release::<Vec<Secret>, _>(list));
}

/// Connects to the directory of `config` and opens its `[mfa]` store (which must exist).
/// Make one per authentication in a PAM module (after any fork), and free it before
/// returning: nothing of it outlives the call.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_authenticator_new(
    config: *const cadenas_config,
    authenticator_out: *mut *mut cadenas_authenticator,
) -> cadenas_result {
    guard(|| {
        let cfg = config_ref(config)?;
        not_null(authenticator_out, "authenticator_out")?;
        hand_out(authenticator_out, Authenticator::new(cfg)?, "authenticator_out")
    })
}

/// Binds as `user` (a login name: data, never DN or filter syntax) with `password` over TLS
/// and, when the account is in the directory's MFA group, verifies `code` (NULL: none given)
/// with the durable replay guard and throttling shared by every process of the host. The
/// verdict goes to `*outcome_out`; the result is `CADENAS_RESULT_OK` whenever a verdict was
/// reached (even a refusal), and an error code when none could be (directory or store
/// unreachable: `PAM_AUTHINFO_UNAVAIL`). The library keeps no copy of the password.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_authenticate(
    authenticator: *const cadenas_authenticator,
    user: *const c_char,
    password: *const c_char,
    code: *const c_char,
    outcome_out: *mut cadenas_auth_outcome,
) -> cadenas_result {
    guard(|| {
        let a = borrow::<Authenticator, _>(authenticator, "authenticator")?;
        let user = text(user, "user")?;
        let password = Password::new(text(password, "password")?);
        let code = opt_text(code, "code")?;
        not_null(outcome_out, "outcome_out")?;
        let outcome = a.authenticate(user, &password, code)?;
        write_out(outcome_out, cadenas_auth_outcome::of(&outcome), "outcome_out")
    })
}

/// Frees an authenticator (NULL and a handle freed already are ignored); closes its
/// connection before returning.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_authenticator_free(authenticator: *mut cadenas_authenticator) {
    guard_value((), || release::<Authenticator, _>(authenticator));
}

/// The TOTP parameters from the C arguments (`algorithm` a `cadenas_totp_algorithm`).
fn totp_params(digits: u32, period: u64, algorithm: u32) -> Result<TotpParams, Failure> {
    let algorithm = match algorithm {
        1 => Algorithm::Sha1,
        2 => Algorithm::Sha256,
        3 => Algorithm::Sha512,
        other => {
            return Err(Failure::new(
                cadenas_result::InvalidInput,
                format!("{other} is not a cadenas_totp_algorithm"),
            ))
        }
    };
    // arguments, not configuration: out of range is invalid input
    if !(6..=8).contains(&digits) || !(15..=300).contains(&period) {
        return Err(Failure::new(
            cadenas_result::InvalidInput,
            format!("digits must be 6 to 8 and period 15 to 300 seconds ({digits} and {period} given)"),
        ));
    }
    Ok(TotpParams::new(algorithm, digits, period)?)
}

/// A copy of the `secret_len` bytes at `secret`, zeroized when dropped.
fn secret_from(secret: *const u8, secret_len: usize) -> Result<Secret, Failure> {
    not_null(secret, "secret")?;
    // SAFETY: `secret` is non-NULL and, by the C contract, points to `secret_len` bytes.
    let bytes = unsafe { std::slice::from_raw_parts(secret, secret_len) };
    Ok(Secret::new(bytes.to_vec()))
}

/// The TOTP code (RFC 6238) of the raw `secret` at Unix time `unix_time`, with `digits` (6 to
/// 8), `period` seconds and `algorithm` (a `cadenas_totp_algorithm`), into `buf`. For tests
/// and tools; logins go through `cadenas_mfa_verify` or `cadenas_authenticate`.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_totp_code(
    secret: *const u8,
    secret_len: usize,
    unix_time: u64,
    digits: u32,
    period: u64,
    algorithm: u32,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> cadenas_result {
    guard(|| {
        let key = secret_from(secret, secret_len)?;
        let params = totp_params(digits, period, algorithm)?;
        let code = zeroize::Zeroizing::new(totp::code_for_step(&key, params.step_at(unix_time), &params));
        copy_out(code.as_bytes(), buf, len, out_n)
    })
}

/// Checks `code` against the raw `secret` at Unix time `unix_time` and its neighbouring steps
/// (±1, constant time), in memory: `CADENAS_RESULT_OK` with the matching time step in
/// `*step_out`, or `CADENAS_RESULT_MFA_BAD_CODE` (also for a code that is not `digits`
/// digits). No replay guard and no throttling: a caller using it for logins must refuse a
/// step at or before the last one it accepted for that user, and count failures — what
/// `cadenas_mfa_verify` does, durably.
#[unsafe(no_mangle)]
pub extern "C" fn cadenas_totp_verify(
    secret: *const u8,
    secret_len: usize,
    code: *const c_char,
    unix_time: u64,
    digits: u32,
    period: u64,
    algorithm: u32,
    step_out: *mut u64,
) -> cadenas_result {
    guard(|| {
        let key = secret_from(secret, secret_len)?;
        let code = text(code, "code")?;
        not_null(step_out, "step_out")?;
        let params = totp_params(digits, period, algorithm)?;
        let bad = || Failure::new(cadenas_result::MfaBadCode, "the code does not match");
        let code = TotpCode::parse(code, params.digits).map_err(|_| bad())?;
        let step = totp::matching_step(&key, &code, params.step_at(unix_time), &params).ok_or_else(bad)?;
        write_out(step_out, step, "step_out")
    })
}
