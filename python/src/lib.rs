//! `cadenas._cadenas`: the Rust half of the Python package `cadenas`, over
//! `cadenas::blocking`. The public Python surface (exceptions, report types, the `Secret`
//! wrapper's docs) is completed by the pure-Python modules of `python/cadenas/`.
//!
//! Every call that touches the network or disk goes through [`run`]: inputs are extracted and
//! owned first, the GIL is released (`Python::detach`) while Rust works, callbacks re-take it
//! on the same thread, and the `tracing` events gathered meanwhile (those some `cadenas`
//! logger lets through) are handed to Python's `logging` once the GIL is held again.

mod errors;
mod logs;
mod mfa;
mod responder;
mod secret;
mod watch;

use pyo3::prelude::*;

/// Releases the GIL while `f` runs, then emits the log records it produced and maps a core
/// error to the `cadenas` exception of its kind. The one path of every blocking call.
pub(crate) fn run<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    F: FnOnce() -> Result<T, cadenas::Error> + Send,
    T: Send,
{
    logs::refresh_level(py);
    let r = py.detach(f);
    logs::flush(py);
    r.map_err(|e| errors::to_py(py, &e))
}

/// Serialises a core value and builds the pure-Python object of the same name from it
/// (`cadenas._reports.<class_name>.from_dict`): one shape for Rust, `--json` and Python.
pub(crate) fn to_report<'py, T: serde::Serialize>(
    py: Python<'py>,
    class_name: &str,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    to_class(py, "cadenas._reports", class_name, value)
}

/// `value` as the dataclass `module.class_name` (built by its `from_dict`).
pub(crate) fn to_class<'py, T: serde::Serialize>(
    py: Python<'py>,
    module: &str,
    class_name: &str,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("report serialisation: {e}")))?;
    let data = py.import("json")?.call_method1("loads", (text,))?;
    py.import(module)?
        .getattr(class_name)?
        .call_method1("from_dict", (data,))
}

/// `IncidentReport.to_html()` / `to_markdown()` / `accounts_csv()`: the report's dict (its
/// JSON shape) rendered by the library, `format` html, md or csv, `lang` en or fr.
#[pyfunction]
fn _render_report(py: Python<'_>, report: &Bound<'_, PyAny>, format: &str, lang: &str) -> PyResult<String> {
    let text: String = py.import("json")?.call_method1("dumps", (report,))?.extract()?;
    let report: cadenas::report::IncidentReport = serde_json::from_str(&text)
        .map_err(|e| errors::invalid_input(format!("not an incident report: {e}")))?;
    let lang = match lang {
        "en" => cadenas::notify::Language::En,
        "fr" => cadenas::notify::Language::Fr,
        other => {
            return Err(errors::invalid_input(format!(
                "{other:?}: the languages are \"en\" and \"fr\""
            )))
        }
    };
    match format {
        "html" => Ok(report.to_html(lang)),
        "md" => Ok(report.to_markdown(lang)),
        "csv" => Ok(report.accounts_csv()),
        other => Err(errors::invalid_input(format!(
            "{other:?}: the formats are html, md and csv"
        ))),
    }
}

#[pymodule]
fn _cadenas(m: &Bound<'_, PyModule>) -> PyResult<()> {
    logs::install(m.py());
    m.add_class::<secret::PySecret>()?;
    m.add_class::<responder::PyResponder>()?;
    m.add_class::<mfa::PyMfa>()?;
    m.add_class::<mfa::PyAuthenticator>()?;
    m.add_function(wrap_pyfunction!(responder::verify_journal, m)?)?;
    m.add_function(wrap_pyfunction!(_render_report, m)?)?;
    m.add_class::<watch::PyWatchService>()?;
    m.add_function(wrap_pyfunction!(watch::watch_replay, m)?)?;
    m.add_function(wrap_pyfunction!(watch::watch_alerts, m)?)?;
    m.add_function(wrap_pyfunction!(mfa::totp_code, m)?)?;
    m.add_function(wrap_pyfunction!(mfa::totp_verify, m)?)?;
    m.add_function(wrap_pyfunction!(mfa::hotp, m)?)?;
    m.add_function(wrap_pyfunction!(errors::error_kinds, m)?)?;
    Ok(())
}
