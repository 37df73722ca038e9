//! `cadenas.Secret`: a password, TOTP secret, otpauth URI or recovery code handed to Python.
//! Its `repr` and `str` are redacted; `reveal()` is the one way to read it. The Rust copy is
//! zeroized when the object is collected (Python's own copies, once revealed, cannot be).

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use zeroize::Zeroizing;

/// A secret value whose `repr()` and `str()` never show it; call `reveal()` to read it.
#[pyclass(name = "Secret", module = "cadenas", frozen)]
pub struct PySecret {
    value: Zeroizing<String>,
}

impl PySecret {
    pub(crate) fn new(value: &str) -> Self {
        Self {
            value: Zeroizing::new(value.to_owned()),
        }
    }

    pub(crate) fn expose(&self) -> &str {
        &self.value
    }
}

#[pymethods]
impl PySecret {
    /// Wraps `value` (e.g. a password typed by a user, to pass to `authenticate`).
    #[new]
    fn py_new(value: &str) -> Self {
        Self::new(value)
    }

    /// The value. Avoid keeping the returned `str` around: Python cannot wipe it.
    fn reveal(&self) -> String {
        self.value.to_string()
    }

    fn __repr__(&self) -> &'static str {
        "Secret(<redacted>)"
    }

    fn __str__(&self) -> &'static str {
        "<redacted>"
    }

    fn __len__(&self) -> usize {
        self.value.chars().count()
    }

    fn __reduce__(&self) -> PyResult<()> {
        Err(PyTypeError::new_err("a cadenas.Secret cannot be pickled"))
    }
}
