//! After the incident: what the containments held in the Postfix queue, where each message is
//! now, and — after review — sending it on its way or deleting it, journaled. Only messages
//! the journal says an incident held can be released or deleted here: never another queue ID.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};
use crate::journal::{Event, Journal, Record, Step};
use crate::postfix::{MailReview, Queue, QueueAction};

/// One message an incident held, and where it is now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HeldMessage {
    /// The incident whose containment held it.
    pub incident: String,
    /// The account (as the containment was given it).
    pub user: String,
    /// The queue ID.
    pub queue_id: String,
    /// Its envelope sender (the sender's choice).
    pub sender: String,
    /// Its recipients when it was held.
    pub recipients: Vec<String>,
    /// When it was held (the journal record's time).
    pub held_at: String,
    /// Where it is now: `hold`, another queue (released), or `gone` (delivered or deleted).
    pub now: String,
    /// What a review did with it already (`release` / `delete`), if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed: Option<String>,
}

/// The messages that containments held (of `incident`, or of every incident), from the
/// journal's hold-mail outcomes and reviews, with where they are in `queue` now.
pub async fn held_messages(
    records: &[Record],
    incident: Option<&str>,
    queue: &Queue,
) -> Result<Vec<HeldMessage>, Error> {
    let mut out: Vec<HeldMessage> = Vec::new();
    let mut reviewed: HashMap<String, String> = HashMap::new();
    for r in records
        .iter()
        .filter(|r| incident.is_none_or(|i| i == r.incident))
    {
        match &r.event {
            Event::Outcome {
                user,
                step: Step::HoldMail,
                detail,
                ..
            } => {
                for m in detail.held_mail.iter().flat_map(|h| &h.messages) {
                    out.push(HeldMessage {
                        incident: r.incident.clone(),
                        user: user.clone(),
                        queue_id: m.queue_id.clone(),
                        sender: m.sender.clone(),
                        recipients: m.recipients.clone(),
                        held_at: r.time.clone(),
                        now: String::new(),
                        reviewed: None,
                    });
                }
            }
            Event::MailReviewed { review } => {
                for id in &review.queue_ids {
                    reviewed.insert(id.clone(), review.action.clone());
                }
            }
            _ => {}
        }
    }
    let now: HashMap<String, String> = queue
        .messages()
        .await?
        .iter()
        .map(|m| (m.queue_id.clone(), m.queue.clone()))
        .collect();
    for m in &mut out {
        m.now = now.get(&m.queue_id).cloned().unwrap_or_else(|| "gone".into());
        m.reviewed = reviewed.get(&m.queue_id).cloned();
    }
    Ok(out)
}

/// Releases (`QueueAction::Release`: back to the queue, to be delivered) or deletes the held
/// messages `ids` of `incident` (`None`: every one still on hold), and journals it. An ID
/// the incident did not hold is refused before anything is done.
pub async fn review_held(
    journal: &Journal,
    queue: &Queue,
    incident: &str,
    action: QueueAction,
    ids: Option<&[String]>,
) -> Result<MailReview, Error> {
    let name = match action {
        QueueAction::Release => "release",
        QueueAction::Delete => "delete",
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a review releases or deletes held mail",
            ))
        }
    };
    let held = held_messages(&journal.records()?, Some(incident), queue).await?;
    if held.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("incident {incident} held no mail"),
        ));
    }
    let ids: Vec<String> = match ids {
        Some(ids) => {
            if let Some(bad) = ids.iter().find(|i| !held.iter().any(|h| &h.queue_id == *i)) {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("{bad:?} is not a message incident {incident} held"),
                ));
            }
            ids.to_vec()
        }
        None => held
            .iter()
            .filter(|h| h.now == "hold")
            .map(|h| h.queue_id.clone())
            .collect(),
    };
    let done = queue.apply(action, &ids).await?;
    let review = MailReview {
        action: name.into(),
        queue_ids: ids,
        done,
    };
    journal
        .append(
            incident,
            vec![Event::MailReviewed {
                review: review.clone(),
            }],
        )
        .await?;
    Ok(review)
}
