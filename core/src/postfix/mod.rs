//! Postfix, seen from outside: its queue (what an account already queued, found by the SASL
//! login that submitted it; held, released or deleted) and its log (what an account sent, and
//! SMTP AUTH logins), through Postfix's own tools and files. Reading and acting on the queue
//! only — the containment decides, and the journal records.

mod log;
mod queue;

pub(crate) use log::smtp_login;
pub use log::{MailLog, SentMail, SmtpLogin};
pub use queue::{
    login_matches, outside_domains, submitted_by, HeldMail, MailReview, PostfixConfig, Queue, QueueAction,
    QueuedMail,
};
