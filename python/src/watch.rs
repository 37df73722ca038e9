//! The watcher from Python: `WatchService` (the service's rounds in a host of the script's
//! own), `watch_replay` (the rules over old logs), `watch_alerts` (what running watchers
//! journaled). Alerts come back as the dataclasses of `cadenas._watch`.

use std::path::PathBuf;
use std::sync::Mutex;

use cadenas::blocking::BlockingWatchService;
use cadenas::investigate::Instant;
use cadenas::watch::{journaled_alerts, Watcher};
use cadenas::{Error, ErrorKind};
use pyo3::prelude::*;

use crate::responder::load_config;
use crate::{run, to_class};

/// The values as `cadenas._watch.<class_name>` objects.
fn to_list<'py, T: serde::Serialize>(
    py: Python<'py>,
    class_name: &str,
    values: &[T],
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    values
        .iter()
        .map(|v| to_class(py, "cadenas._watch", class_name, v))
        .collect()
}

fn since_of(since: Option<&str>) -> Result<Option<Instant>, Error> {
    since.map(Instant::parse).transpose()
}

/// The watcher as a service: each `poll()` reads what the `[watch]` logs gained, and tells,
/// contains (where a rule may) and journals each new alert.
#[pyclass(name = "WatchService", module = "cadenas", frozen)]
pub struct PyWatchService {
    inner: Mutex<BlockingWatchService>,
}

#[pymethods]
impl PyWatchService {
    /// Opens the service of a TOML config file (`[watch]` and `[journal]` required).
    #[staticmethod]
    fn from_config(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let cfg = load_config(py, &path)?;
        let inner = run(py, || BlockingWatchService::new(&cfg))?;
        Ok(Self {
            inner: Mutex::new(inner),
        })
    }

    /// One round; the alerts handled, each with what was done about it.
    fn poll<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let handled = run(py, || self.inner.lock().unwrap_or_else(|p| p.into_inner()).poll())?;
        to_list(py, "HandledAlert", &handled)
    }
}

/// What the `[watch]` rules of `config` would have alerted over `logs` (plain or gzip'd,
/// oldest first), from `since` (RFC 3339, a date, or a time ago: `"36h"`). Changes nothing.
#[pyfunction]
#[pyo3(signature = (config, logs, *, since=None))]
pub(crate) fn watch_replay<'py>(
    py: Python<'py>,
    config: PathBuf,
    logs: Vec<PathBuf>,
    since: Option<String>,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let cfg = load_config(py, &config)?;
    let alerts = run(py, || {
        let watch = cfg
            .watch
            .as_ref()
            .ok_or_else(|| Error::new(ErrorKind::Config, "the config has no [watch] section"))?;
        Watcher::replay(watch, &logs, since_of(since.as_deref())?)
    })?;
    to_list(py, "Alert", &alerts)
}

/// The alerts the journal of `config` holds (what running watchers raised and did), oldest
/// first, from `since`.
#[pyfunction]
#[pyo3(signature = (config, *, since=None))]
pub(crate) fn watch_alerts<'py>(
    py: Python<'py>,
    config: PathBuf,
    since: Option<String>,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let cfg = load_config(py, &config)?;
    let handled = run(py, || {
        let journal = cfg
            .journal
            .as_ref()
            .ok_or_else(|| Error::new(ErrorKind::Config, "the config has no [journal] section"))?;
        journaled_alerts(
            &journal.location()?,
            journal.key()?.as_ref(),
            since_of(since.as_deref())?,
        )
    })?;
    to_list(py, "HandledAlert", &handled)
}
