//! The one retry loop: tries again with a doubling back-off while the caller says another
//! try may help (webhooks, notifications, a lost directory connection).

use std::future::Future;
use std::time::Duration;

/// How often and how patiently to try again: up to `retries` more tries after the first,
/// waiting `first` before the second and twice as long before each next one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Backoff {
    pub(crate) first: Duration,
    pub(crate) retries: u32,
}

/// Runs `attempt` until `again` says a result is final or the retries are used up; the last
/// result and the number of tries made. `what` names the retried action in debug logs.
pub(crate) async fn retry<T, F, Fut>(
    what: &str,
    backoff: Backoff,
    mut attempt: F,
    again: impl Fn(&T) -> bool,
) -> (T, u32)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let mut wait = backoff.first;
    let mut tries = 0;
    loop {
        let r = attempt().await;
        tries += 1;
        if tries > backoff.retries || !again(&r) {
            return (r, tries);
        }
        tracing::debug!(what, tries, wait_ms = wait.as_millis() as u64, "trying again");
        tokio::time::sleep(wait).await;
        wait = wait.saturating_mul(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn tries_again_until_told_or_out_of_retries() {
        let calls = AtomicU32::new(0);
        let backoff = Backoff {
            first: Duration::from_millis(1),
            retries: 3,
        };
        let (r, tries) = retry(
            "test",
            backoff,
            || async { calls.fetch_add(1, Ordering::SeqCst) },
            |n| *n < 2,
        )
        .await;
        assert_eq!((r, tries), (2, 3));
        let (r, tries) = retry("test", backoff, || async { 0 }, |_| true).await;
        assert_eq!((r, tries), (0, 4), "the first try and 3 retries");
    }
}
