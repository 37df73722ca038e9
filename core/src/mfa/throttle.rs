//! The throttling rules, the same for every store: each runs them in one transaction over
//! the user's row, so the decision and its record cannot be split by a concurrent process.

/// Failed-attempt bookkeeping for throttling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Failures {
    /// Failures in the current window.
    pub count: u32,
    /// Start of the current window (Unix seconds).
    pub window_start: u64,
    /// Verification is refused until this time (Unix seconds), if set.
    pub locked_until: Option<u64>,
}

/// Throttling policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ThrottlePolicy {
    /// Failures within `window` that trigger a cool-down.
    pub max_failures: u32,
    /// Window length in seconds.
    pub window: u64,
    /// Cool-down length in seconds.
    pub lockout: u64,
}
/// The throttling rules, the same for every store (each runs them in one transaction over
/// the user's row). `throttle`: the lock end if locked at `now`, and the row to write.
pub(super) fn throttled(
    f: Failures,
    now: u64,
    failed: bool,
    p: &ThrottlePolicy,
) -> (Option<u64>, Option<Failures>) {
    if let Some(until) = f.locked_until.filter(|u| *u > now) {
        return (Some(until), None);
    }
    if !failed {
        return (None, None);
    }
    let mut f = fresh_window(f, now, p);
    f.count += 1;
    if f.count >= p.max_failures {
        f.locked_until = Some(now + p.lockout);
    }
    (None, Some(f))
}

/// `reserve_attempt`: counts the attempt, or starts the lockout when the window is used up.
pub(super) fn reserved(f: Failures, now: u64, p: &ThrottlePolicy) -> (Option<u64>, Option<Failures>) {
    if let Some(until) = f.locked_until.filter(|u| *u > now) {
        return (Some(until), None);
    }
    let mut f = fresh_window(f, now, p);
    if f.count >= p.max_failures {
        f.locked_until = Some(now + p.lockout);
    } else {
        f.count += 1;
    }
    (f.locked_until, Some(f))
}

/// `confirm_failure`: the lockout starts when the window's count reached the limit.
pub(super) fn confirmed(mut f: Failures, now: u64, p: &ThrottlePolicy) -> Option<Failures> {
    if f.count >= p.max_failures && f.locked_until.is_none_or(|u| u <= now) {
        f.locked_until = Some(now + p.lockout);
        return Some(f);
    }
    None
}

fn fresh_window(f: Failures, now: u64, p: &ThrottlePolicy) -> Failures {
    if f.locked_until.is_some() || now.saturating_sub(f.window_start) >= p.window {
        Failures {
            count: 0,
            window_start: now,
            locked_until: None,
        }
    } else {
        f
    }
}
