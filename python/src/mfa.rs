//! `cadenas.Mfa` (TOTP enrolment, verification with the durable replay guard, recovery codes),
//! `cadenas.Authenticator` (password + code, what a PAM module or RADIUS plugin calls), and
//! the TOTP helpers for tests and benchmarks.

use std::path::PathBuf;

use cadenas::blocking::Authenticator;
use cadenas::mfa::totp::{self, Algorithm, TotpCode, TotpParams};
use cadenas::mfa::Mfa;
use cadenas::{Config, Error, ErrorKind, Password, Secret};
use pyo3::prelude::*;

use crate::responder::{load_config, parse_config};
use crate::run;
use crate::secret::PySecret;

fn mfa_config(cfg: &Config) -> Result<&cadenas::mfa::MfaConfig, Error> {
    cfg.mfa
        .as_ref()
        .ok_or_else(|| Error::new(ErrorKind::Config, "the config has no [mfa] section"))
}

/// TOTP enrolment and verification over the MFA store of a config (SQLite, encrypted at rest,
/// shared safely by every process of the host).
#[pyclass(name = "Mfa", module = "cadenas", frozen)]
pub struct PyMfa {
    inner: Mfa,
}

#[pymethods]
impl PyMfa {
    /// Opens the `[mfa]` store of a config file (created, with its key, if missing).
    #[staticmethod]
    fn from_config(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let cfg = load_config(py, &path)?;
        let inner = run(py, || Mfa::open(mfa_config(&cfg)?, true))?;
        Ok(Self { inner })
    }

    /// Opens the `[mfa]` store of TOML config text.
    #[staticmethod]
    #[pyo3(signature = (text, *, base_dir=None))]
    fn from_toml(py: Python<'_>, text: &str, base_dir: Option<PathBuf>) -> PyResult<Self> {
        let cfg = parse_config(py, text, &base_dir.unwrap_or_else(|| PathBuf::from(".")))?;
        let inner = run(py, || Mfa::open(mfa_config(&cfg)?, true))?;
        Ok(Self { inner })
    }

    /// A new *pending* enrolment for `user` (replacing any other: an attacker's device stops
    /// working). Returns an `Enrolment` whose `uri`, `qr_svg`, `qr_terminal` and `secret` are
    /// `Secret`s; the first verified code activates it.
    fn enroll<'py>(&self, py: Python<'py>, user: String) -> PyResult<Bound<'py, PyAny>> {
        let e = run(py, || self.inner.enroll(&user))?;
        let text = |s: &Secret| String::from_utf8_lossy(s.expose_secret()).into_owned();
        let uri = zeroize::Zeroizing::new(text(&e.uri));
        let secret = zeroize::Zeroizing::new(text(&e.secret_base32()));
        let algorithm = match e.params.algorithm {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
            _ => "sha1",
        };
        py.import("cadenas._reports")?.getattr("Enrolment")?.call1((
            Py::new(py, PySecret::new(&uri))?,
            Py::new(py, PySecret::new(&text(&e.qr_svg)))?,
            Py::new(py, PySecret::new(&text(&e.qr_terminal)))?,
            Py::new(py, PySecret::new(&secret))?,
            e.params.digits,
            e.params.period,
            algorithm,
        ))
    }

    /// Verifies a code (±1 step, constant time, throttled); a code — or an earlier one — never
    /// works twice, across processes. Raises `MfaBadCode`, `MfaReplayed`, `MfaThrottled`,
    /// `MfaNotEnrolled`. Returns `Verified(step, activated)`.
    #[pyo3(signature = (user, code, *, now=None))]
    fn verify<'py>(
        &self,
        py: Python<'py>,
        user: String,
        code: String,
        now: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let v = run(py, || match now {
            Some(at) => self.inner.verify_at(&user, &code, at),
            None => self.inner.verify(&user, &code),
        })?;
        py.import("cadenas._reports")?
            .getattr("Verified")?
            .call1((v.step, v.activated))
    }

    /// `"pending"`, `"active"` or `None`.
    fn enrolment_state(&self, py: Python<'_>, user: String) -> PyResult<Option<String>> {
        let st = run(py, || self.inner.enrolment_state(&user))?;
        Ok(st.map(|s| format!("{s:?}").to_ascii_lowercase()))
    }

    /// A fresh set of single-use recovery codes (replacing the old set), as `Secret`s.
    fn recovery_codes(&self, py: Python<'_>, user: String) -> PyResult<Vec<Py<PySecret>>> {
        let codes = run(py, || self.inner.new_recovery_codes(&user))?;
        codes
            .iter()
            .map(|c| Py::new(py, PySecret::new(c.expose_secret())))
            .collect()
    }

    /// Uses one recovery code (consumed atomically; raises `MfaRecoveryCode` otherwise).
    fn use_recovery_code(&self, py: Python<'_>, user: String, code: String) -> PyResult<()> {
        run(py, || self.inner.use_recovery_code(&user, &code))
    }

    /// Drops the user's enrolment and recovery codes; `True` if there was one.
    fn reset(&self, py: Python<'_>, user: String) -> PyResult<bool> {
        run(py, || self.inner.reset(&user))
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

/// Password + TOTP checks against the directory and the MFA store.
#[pyclass(name = "Authenticator", module = "cadenas", frozen)]
pub struct PyAuthenticator {
    inner: Authenticator,
}

/// A password argument: a `Secret` or a `str`.
fn password_of(p: &Bound<'_, PyAny>) -> PyResult<Password> {
    if let Ok(s) = p.cast::<PySecret>() {
        return Ok(Password::new(s.get().expose()));
    }
    let s: String = p
        .extract()
        .map_err(|_| pyo3::exceptions::PyTypeError::new_err("password must be a str or a cadenas.Secret"))?;
    Ok(Password::new(s))
}

#[pymethods]
impl PyAuthenticator {
    /// Connects to the directory of a config file and opens its `[mfa]` store (which must
    /// exist).
    #[staticmethod]
    fn from_config(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let cfg = load_config(py, &path)?;
        let inner = run(py, || Authenticator::new(&cfg))?;
        Ok(Self { inner })
    }

    /// Binds as `user` with `password` and, for members of the MFA group, verifies `code`.
    /// Returns an `AuthOutcome`; an unknown user is `BAD_PASSWORD` (servers do not say which).
    #[pyo3(signature = (user, password, code=None))]
    fn authenticate<'py>(
        &self,
        py: Python<'py>,
        user: String,
        password: &Bound<'py, PyAny>,
        code: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let password = password_of(password)?;
        let outcome = run(py, || self.inner.authenticate(&user, &password, code.as_deref()))?;
        let name = serde_json::to_value(&outcome)
            .ok()
            .and_then(|v| v.get("outcome").and_then(|o| o.as_str()).map(str::to_owned))
            .unwrap_or_default();
        py.import("cadenas._reports")?
            .getattr("AuthOutcome")?
            .call1((name,))
    }
}

fn params(digits: u32, period: u64, algorithm: &str) -> PyResult<TotpParams> {
    let algorithm = match algorithm.to_ascii_lowercase().as_str() {
        "sha1" => Algorithm::Sha1,
        "sha256" => Algorithm::Sha256,
        "sha512" => Algorithm::Sha512,
        other => {
            return Err(crate::errors::invalid_input(format!(
                "unknown algorithm {other:?}"
            )))
        }
    };
    TotpParams::new(algorithm, digits, period).map_err(|e| Python::attach(|py| crate::errors::to_py(py, &e)))
}

/// The TOTP code of `secret` (raw bytes) at Unix time `time` (RFC 6238).
#[pyfunction]
#[pyo3(signature = (secret, time, *, digits=6, period=30, algorithm="sha1"))]
pub(crate) fn totp_code(
    secret: &[u8],
    time: u64,
    digits: u32,
    period: u64,
    algorithm: &str,
) -> PyResult<String> {
    let p = params(digits, period, algorithm)?;
    Ok(totp::code_for_step(
        &Secret::new(secret.to_vec()),
        p.step_at(time),
        &p,
    ))
}

/// The time step (among the one of `time` and its neighbours) whose code is `code`, or
/// `None`: the in-memory check, without replay guard or throttling (use `Mfa.verify` for
/// logins).
#[pyfunction]
#[pyo3(signature = (secret, code, time, *, digits=6, period=30, algorithm="sha1"))]
pub(crate) fn totp_verify(
    secret: &[u8],
    code: &str,
    time: u64,
    digits: u32,
    period: u64,
    algorithm: &str,
) -> PyResult<Option<u64>> {
    let p = params(digits, period, algorithm)?;
    let Ok(code) = TotpCode::parse(code, p.digits) else {
        return Ok(None);
    };
    Ok(totp::matching_step(
        &Secret::new(secret.to_vec()),
        &code,
        p.step_at(time),
        &p,
    ))
}

/// The HOTP value of `secret` for `counter` (RFC 4226).
#[pyfunction]
#[pyo3(signature = (secret, counter, *, digits=6, algorithm="sha1"))]
pub(crate) fn hotp(secret: &[u8], counter: u64, digits: u32, algorithm: &str) -> PyResult<String> {
    let p = params(digits, 30, algorithm)?;
    Ok(totp::hotp(
        &Secret::new(secret.to_vec()),
        counter,
        p.algorithm,
        p.digits,
    ))
}
