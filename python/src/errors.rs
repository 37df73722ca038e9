//! Core errors become `cadenas` exceptions: one class per `ErrorKind`, looked up by the kind's
//! stable name in `cadenas._errors`, each carrying `.code`, `.kind` and the LDAP result.

use pyo3::prelude::*;

/// Builds the exception for `e` (never a bare `Exception`; an unknown kind — a newer core —
/// becomes the base `CadenasError` with its code).
pub(crate) fn to_py(py: Python<'_>, e: &cadenas::Error) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let (rc, text) = match e.ldap() {
            Some(l) => (Some(l.rc), Some(l.text.clone())),
            None => (None, None),
        };
        let exc = py.import("cadenas._errors")?.getattr("_from_core")?.call1((
            e.kind().name(),
            e.code(),
            e.message(),
            e.to_string(),
            rc,
            text,
        ))?;
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|import_failed| import_failed)
}

/// `[(name, code), ...]` for every error kind of the core, in code order: the Python side
/// checks at import that it has a class for each.
#[pyfunction]
pub(crate) fn error_kinds() -> Vec<(&'static str, u32)> {
    cadenas::ErrorKind::ALL
        .iter()
        .map(|k| (k.name(), k.code()))
        .collect()
}

/// `cadenas.InvalidInput` (a `ValueError`) for a bad argument value caught in the binding.
pub(crate) fn invalid_input(message: impl Into<String>) -> PyErr {
    Python::attach(|py| {
        to_py(
            py,
            &cadenas::Error::new(cadenas::ErrorKind::InvalidInput, message),
        )
    })
}
