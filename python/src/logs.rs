//! Rust `tracing` events reach Python's `logging` under the `cadenas` logger.
//!
//! Events are queued by a `tracing` layer on whatever thread emits them, and emitted by
//! [`flush`] on the thread that called into `cadenas`, once it holds the GIL again: a Rust
//! thread never waits for the GIL to log (the deadlock of pyo3-log, vorner/pyo3-log#65), and
//! Python handlers configured at any time are honoured. The core never logs a secret.
//!
//! Only events some `cadenas` logger would let through are queued: the lowest effective level
//! of `cadenas` and of the loggers under it is read at every call ([`refresh_level`]). Before,
//! every debug event was formatted and queued whatever Python's levels, and a run of a few
//! thousand accounts ended with a warning that thousands of (unwanted) records were dropped.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Most records kept between two flushes; older ones are dropped and counted.
const MAX_QUEUED: usize = 10_000;

struct Record {
    level: u8,
    logger: String,
    message: String,
}

static QUEUE: Mutex<(VecDeque<Record>, usize)> = Mutex::new((VecDeque::new(), 0));

/// The lowest Python level a `cadenas` logger lets through, as of the last call into
/// `cadenas`: events below it are neither formatted nor queued.
static LOWEST_LEVEL: AtomicU8 = AtomicU8::new(0);

/// Python `logging` levels.
fn py_level(l: &Level) -> u8 {
    match *l {
        Level::ERROR => 40,
        Level::WARN => 30,
        Level::INFO => 20,
        Level::DEBUG => 10,
        Level::TRACE => 5,
    }
}

#[derive(Default)]
struct Message {
    text: String,
    fields: String,
}

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.text, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.text.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

struct QueueLayer;

impl<S: Subscriber> Layer<S> for QueueLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if py_level(meta.level()) < LOWEST_LEVEL.load(Ordering::Relaxed) {
            return;
        }
        let mut m = Message::default();
        event.record(&mut m);
        let logger = meta.target().replace("::", ".");
        let record = Record {
            level: py_level(meta.level()),
            logger: if logger.starts_with("cadenas") {
                logger
            } else {
                format!("cadenas.{logger}")
            },
            // a value from outside (a server's message, a name) never starts a line of its own
            message: cadenas::escape_controls(&format!("{}{}", m.text, m.fields)).into_owned(),
        };
        let mut q = QUEUE.lock().unwrap_or_else(|p| p.into_inner());
        if q.0.len() >= MAX_QUEUED {
            q.0.pop_front();
            q.1 += 1;
        }
        q.0.push_back(record);
    }
}

/// Installs the queueing layer as the global `tracing` subscriber (once; a host that installed
/// its own keeps it).
pub(crate) fn install(py: Python<'_>) {
    refresh_level(py);
    let subscriber = tracing_subscriber::registry().with(QueueLayer);
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Reads the lowest effective level of the `cadenas` logger and of every logger under it
/// (`cadenas.incident.run`...) that exists now; events below it are not queued until the next
/// call. When it cannot be read, every event is queued (Python filters them then).
pub(crate) fn refresh_level(py: Python<'_>) {
    let lowest = lowest_effective_level(py).unwrap_or(0);
    LOWEST_LEVEL.store(u8::try_from(lowest.clamp(0, 255)).unwrap_or(0), Ordering::Relaxed);
}

fn lowest_effective_level(py: Python<'_>) -> PyResult<i64> {
    let logging = py.import("logging")?;
    let level =
        |logger: &Bound<'_, PyAny>| -> PyResult<i64> { logger.call_method0("getEffectiveLevel")?.extract() };
    let mut lowest = level(&logging.call_method1("getLogger", ("cadenas",))?)?;
    let loggers = logging
        .getattr("Logger")?
        .getattr("manager")?
        .getattr("loggerDict")?;
    for (name, logger) in loggers.cast::<PyDict>()?.iter() {
        // placeholders (a name only created as the parent of another) have no level
        let under = name.extract::<String>().is_ok_and(|n| n.starts_with("cadenas."));
        if under && logger.hasattr("getEffectiveLevel")? {
            lowest = lowest.min(level(&logger)?);
        }
    }
    Ok(lowest)
}

/// Emits the queued records through `logging.getLogger(<target>)`, on this thread.
pub(crate) fn flush(py: Python<'_>) {
    let (records, dropped) = {
        let mut q = QUEUE.lock().unwrap_or_else(|p| p.into_inner());
        (std::mem::take(&mut q.0), std::mem::take(&mut q.1))
    };
    if records.is_empty() && dropped == 0 {
        return;
    }
    let Ok(logging) = py.import("logging") else {
        return;
    };
    for r in records {
        if let Ok(logger) = logging.call_method1("getLogger", (r.logger.as_str(),)) {
            let _ = logger.call_method1("log", (r.level, r.message));
        }
    }
    if dropped > 0 {
        if let Ok(logger) = logging.call_method1("getLogger", ("cadenas",)) {
            let _ = logger.call_method1(
                "warning",
                (format!("{dropped} log records were dropped (queue full)"),),
            );
        }
    }
}
