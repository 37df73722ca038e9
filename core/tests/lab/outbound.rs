//! The attacker's outbound mail, against the lab's real Postfix (SMTP AUTH through the lab
//! Dovecot, `check_policy_service` at RCPT and end of data) and the policy service run here:
//! SMTP clients bound to their own loopback addresses, real queue files, real notifications.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cadenas::incident::{ContainOptions, Responder};
use cadenas::journal::{Step, StepStatus};
use cadenas::outbound::{ask, ListenAddress, PolicyRequest, PolicyService, Verdict};
use cadenas::session::RevocationStatus;
use cadenas::Config;

use crate::incident::{temp_journal, MemorySink};
use crate::support::smtp::{delete_queued, queue, Smtp};
use crate::support::{dovecot_env, listening, policy_address, smtp_env, OpenLdapLab};

/// The lab config with the Dovecot revoker and `[mail]`, `extra` TOML, and the journal at
/// `journal`.
pub fn mail_config(lab: &OpenLdapLab, journal: &std::path::Path, extra: &str) -> Config {
    let revokers = std::fs::read_to_string(&dovecot_env()["CADENAS_LAB_REVOKERS"]).expect("revokers.toml");
    lab.config_with(|t| {
        let t = t.replace(
            &t.lines()
                .find(|l| l.starts_with("path = ") && l.contains("journal"))
                .map(str::to_owned)
                .unwrap_or_default(),
            &format!("path = \"{}\"", journal.display()),
        );
        format!("{t}\n{revokers}\n{extra}\n")
    })
}

/// `[outbound]` for the lab Postfix's policy address, and `[postfix]` for its queue.
pub(crate) fn outbound_and_postfix(limits: &str) -> String {
    let env = smtp_env();
    format!(
        "[outbound]\nlisten = [\"{}\"]\njournal_poll_ms = 50\n{limits}\n[postfix]\nconfig_dir = \"{}\"\n",
        env["CADENAS_LAB_POLICY"], env["CADENAS_LAB_SMTP_CONFIG_DIR"]
    )
}

/// The policy service for `cfg`, running until the handle is dropped.
pub(crate) struct Running(tokio::task::JoinHandle<Result<(), cadenas::Error>>, PolicyService);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(crate) async fn start(cfg: &Config, at: &str) -> Running {
    // a service of this test just dropped goes away asynchronously (its task aborted): until
    // its listener is closed the new one could not bind (the address is this test's, held
    // through policy_address)
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(at).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let service = PolicyService::new(cfg).expect("service");
    let s = service.clone();
    let handle = tokio::spawn(async move { s.run().await });
    listening(at).await;
    Running(handle, service)
}

pub(crate) fn pw(lab: &OpenLdapLab) -> String {
    lab.get("CADENAS_LAB_USER_PW").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_authenticated_before_contain_is_refused_from_its_next_message_and_its_queued_mail_is_held()
{
    let lab = OpenLdapLab::load();
    let (victim, _) = lab.fresh_user("smtp-victim").await;
    let (bystander, _) = lab.fresh_user("smtp-bystander").await;
    let (victim, bystander) = (victim.to_string(), bystander.to_string());
    let journal = temp_journal("outbound-contain");
    let cfg = mail_config(&lab, &journal, &outbound_and_postfix(""));
    let (_port, at) = policy_address().await;
    let _service = start(&cfg, &at).await;

    // the attacker, from its own address, with the stolen password; a bystander at the same time
    let mut attacker = Smtp::login_from("127.0.0.66", &victim, &pw(&lab))
        .await
        .expect("attacker login");
    let mut other = Smtp::login_from("127.0.0.67", &bystander, &pw(&lab))
        .await
        .expect("bystander login");
    let mut queued = Vec::new();
    for i in 0..2 {
        let to = format!("target{i}@phish-target.test");
        queued.push(
            attacker
                .send(
                    "ceo@bank.test",
                    &[&to, &format!("{bystander}@example.test")],
                    "click here",
                )
                .await
                .expect("queued before"),
        );
    }
    let theirs = other
        .send(
            &format!("{bystander}@example.test"),
            &["friend@outside.test"],
            "hello",
        )
        .await
        .expect("bystander queued");
    let q = queue();
    assert!(
        queued.iter().chain([&theirs]).all(|id| q.contains_key(id)),
        "all in the queue: {q:?}"
    );

    let responder = Responder::new(&cfg, &journal).await.expect("responder");
    let sink = Arc::new(MemorySink::default());
    let report = responder
        .contain(
            std::slice::from_ref(&crate::support::one(&victim)),
            ContainOptions::new(sink),
        )
        .await
        .expect("contain");

    // the same session, right after: every message refused
    for i in 0..3 {
        let r = attacker
            .send("ceo@bank.test", &[&format!("more{i}@phish-target.test")], "again")
            .await;
        let (code, text) = r.expect_err("refused after contain");
        assert_eq!(code, 554, "{text}");
        assert!(text.contains("5.7.1") && text.contains("suspended"), "{text}");
        assert!(
            !text.contains(&victim) || text.contains("Recipient"),
            "no internal detail: {text}"
        );
    }
    // a new login with the old password: refused by the directory (and the flushed cache)
    let again = Smtp::login_from("127.0.0.66", &victim, &pw(&lab)).await;
    assert!(
        matches!(&again, Err(t) if t.starts_with("535")),
        "{:?}",
        again.err()
    );
    // the bystander is untouched
    let still = other
        .send(
            &format!("{bystander}@example.test"),
            &["friend2@outside.test"],
            "hello again",
        )
        .await
        .expect("bystander still sends");

    let u = &report.users[0];
    let step = |s: Step| {
        u.steps
            .iter()
            .find(|x| x.step == s)
            .unwrap_or_else(|| panic!("{s:?} in {u:?}"))
    };
    let revoke = step(Step::RevokeSessions);
    let smtp = revoke
        .detail
        .revocations
        .iter()
        .find(|o| o.revoker == "outbound-policy")
        .expect("smtp outcome");
    assert_eq!(smtp.status, RevocationStatus::Revoked, "{smtp:?}");
    let hold = step(Step::HoldMail);
    assert_eq!(hold.status, StepStatus::Changed, "{hold:?}");
    let held = hold.detail.held_mail.as_ref().expect("held mail");
    let mut held_ids: Vec<String> = held.messages.iter().map(|m| m.queue_id.clone()).collect();
    held_ids.sort();
    let mut want = queued.clone();
    want.sort();
    // the local recipient was delivered at once: only the outside ones keep a message queued
    assert_eq!(held_ids, want, "{held:?}");
    assert_eq!(held.outside_domains, ["phish-target.test"]);
    assert!(held
        .messages
        .iter()
        .all(|m| m.sasl_username.as_deref() == Some(victim.as_str())));
    assert!(report.users[0].complete(), "{report:?}");
    let q = queue();
    for id in &queued {
        assert_eq!(q.get(id).map(String::as_str), Some("hold"), "{id} held: {q:?}");
    }
    for id in [&theirs, &still] {
        assert_ne!(
            q.get(id).map(String::as_str),
            Some("hold"),
            "bystander's {id} untouched: {q:?}"
        );
    }
    // the journal says it, with no secret
    let text = std::fs::read_to_string(&journal).expect("journal");
    assert!(text.contains("\"hold_mail\"") && text.contains(&queued[0]));
    assert!(!text.contains(&pw(&lab)));

    // release leaves held mail held, and says so
    let released = responder
        .release(
            &crate::support::one(&victim),
            cadenas::incident::ReleaseOptions::default().with_override_reason("test"),
        )
        .await
        .expect("release");
    assert!(
        released
            .kept
            .iter()
            .any(|k| k.starts_with("2 message(s) held in the mail queue")),
        "{:?}",
        released.kept
    );
    let q = queue();
    assert!(
        queued
            .iter()
            .all(|id| q.get(id).map(String::as_str) == Some("hold")),
        "{q:?}"
    );

    // after review: one sent on its way, one deleted, journaled; another ID is never touched
    use cadenas::outbound::{held_messages, review_held};
    use cadenas::postfix::{Queue, QueueAction};
    let postfix = Queue::new(cfg.postfix.as_ref().expect("[postfix]"));
    let journal_w = responder.journal().expect("journal");
    let listed = held_messages(
        &journal_w.records().expect("records"),
        Some(&report.incident),
        &postfix,
    )
    .await
    .expect("held");
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed
        .iter()
        .all(|m| m.now == "hold" && m.user == victim && m.reviewed.is_none()));
    let e = review_held(
        journal_w,
        &postfix,
        &report.incident,
        QueueAction::Delete,
        Some(std::slice::from_ref(&theirs)),
    )
    .await
    .expect_err("not held by this incident");
    assert_eq!(e.kind(), cadenas::ErrorKind::InvalidInput, "{e}");
    let r = review_held(
        journal_w,
        &postfix,
        &report.incident,
        QueueAction::Release,
        Some(&queued[..1]),
    )
    .await
    .expect("release");
    assert_eq!(r.done, 1, "{r:?}");
    let r = review_held(journal_w, &postfix, &report.incident, QueueAction::Delete, None)
        .await
        .expect("delete the rest");
    assert_eq!(
        (r.done, r.queue_ids.clone()),
        (1, vec![queued[1].clone()]),
        "{r:?}"
    );
    let listed = held_messages(
        &journal_w.records().expect("records"),
        Some(&report.incident),
        &postfix,
    )
    .await
    .expect("held");
    let now = |id: &str| {
        listed
            .iter()
            .find(|m| m.queue_id == id)
            .map(|m| (m.now.clone(), m.reviewed.clone()))
            .expect("listed")
    };
    assert_eq!(
        now(&queued[1]),
        ("gone".to_owned(), Some("delete".to_owned())),
        "{listed:?}"
    );
    let (q0, r0) = now(&queued[0]);
    assert!(
        q0 != "hold" && q0 != "gone" && r0.as_deref() == Some("release"),
        "{listed:?}"
    );
    assert!(
        queue().contains_key(&theirs),
        "the bystander's message is still there"
    );
    delete_queued(&[queued, vec![theirs, still]].concat());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_policy_service_the_revoke_step_says_smtp_sessions_keep_sending_and_they_do() {
    let lab = OpenLdapLab::load();
    let (victim, _) = lab.fresh_user("smtp-unwatched").await;
    let victim = victim.to_string();
    let journal = temp_journal("outbound-none");
    let cfg = mail_config(&lab, &journal, "");
    // nothing listens where Postfix asks: it goes on (DUNNO), as configured in the lab
    let (_port, _) = policy_address().await;
    let mut attacker = Smtp::login_from("127.0.0.68", &victim, &pw(&lab))
        .await
        .expect("login");
    let responder = Responder::new(&cfg, &journal).await.expect("responder");
    let report = responder
        .contain(
            std::slice::from_ref(&crate::support::one(&victim)),
            ContainOptions::new(Arc::new(MemorySink::default())),
        )
        .await
        .expect("contain");
    let u = &report.users[0];
    let revoke = u
        .steps
        .iter()
        .find(|s| s.step == Step::RevokeSessions)
        .expect("revoke");
    assert_eq!(revoke.status, StepStatus::Partial, "{revoke:?}");
    assert!(
        report
            .not_revoked
            .iter()
            .any(|n| n.contains("SMTP sessions authenticated before")),
        "{:?}",
        report.not_revoked
    );
    assert!(u.complete(), "partial is done, with what it could not do said");
    assert!(
        u.steps.iter().all(|s| s.step != Step::HoldMail),
        "no [postfix]: no hold step"
    );
    // what the report says is true: the session still sends
    let id = attacker
        .send("x@bank.test", &["t@phish-target.test"], "spam")
        .await
        .expect("still sending");
    delete_queued(&[id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sending_limit_defers_the_next_message_and_tells_the_on_call_list_without_content() {
    let lab = OpenLdapLab::load();
    let (sender, _) = lab.fresh_user("smtp-bulk").await;
    let (oncall, _) = lab.fresh_user("smtp-oncall").await;
    let sender = sender.to_string();
    let journal = temp_journal("outbound-limit");
    let env = smtp_env();
    let limits = "[[outbound.limits]]\ncounts = \"messages\"\nmax = 2\nwindow_secs = 600\naction = \"DEFER_IF_PERMIT\"\n";
    let notify = format!(
        "[[notify]]\nname = \"oncall-sms\"\ntype = \"smtp\"\nevents = [\"sending_limit\"]\nurl = \"smtp://{}\"\n\
         ca_file = \"{}\"\nusername = \"{}\"\npassword_file = \"{}\"\nfrom = \"Cadenas <cadenas@example.test>\"\n\
         to = [\"{oncall}@example.test\"]\n",
        env["CADENAS_LAB_SMTP_STARTTLS"],
        lab.get("CADENAS_LAB_CA"),
        dovecot_env()["CADENAS_LAB_SMTP_USER"],
        dovecot_env()["CADENAS_LAB_SMTP_PASSWORD_FILE"],
    );
    let cfg = mail_config(
        &lab,
        &journal,
        &format!("{}\n{notify}", outbound_and_postfix(limits)),
    );
    let (_port, at) = policy_address().await;
    let _service = start(&cfg, &at).await;
    let mut s = Smtp::login_from("127.0.0.69", &sender, &pw(&lab))
        .await
        .expect("login");
    let mut ids = Vec::new();
    for i in 0..2 {
        ids.push(
            s.send(
                "a@bank.test",
                &[&format!("r{i}@bulk-target.test")],
                "SECRET-BODY-MARKER",
            )
            .await
            .expect("within the limit"),
        );
    }
    let (code, text) = s
        .send("a@bank.test", &["r3@bulk-target.test"], "SECRET-BODY-MARKER")
        .await
        .expect_err("deferred");
    assert_eq!(code, 450, "{text}");
    assert!(text.contains("4.7.1"), "{text}");
    delete_queued(&ids);
    let inbox = crate::notify::inbox_of(&lab, &oncall.to_string(), 1).await;
    assert!(inbox.contains(&sender), "{inbox}");
    assert!(inbox.contains("3 messages within 600 s (limit 2)"), "{inbox}");
    assert!(inbox.contains("127.0.0.69"), "{inbox}");
    assert!(
        !inbox.contains("SECRET-BODY-MARKER") && !inbox.contains(&pw(&lab)),
        "{inbox}"
    );
}

/// A free loopback port for a service of a test's own.
fn free_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

fn request(user: &str) -> PolicyRequest {
    PolicyRequest::rcpt(user, "127.0.0.70")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_protocol_input_closes_that_connection_only_and_memory_stays_bounded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let lab = OpenLdapLab::load();
    let journal = temp_journal("outbound-bad-input");
    let at = free_address();
    let sock = std::env::temp_dir().join(format!("cadenas-policy-{}.sock", std::process::id()));
    let extra = format!(
        "[outbound]\nlisten = [\"{at}\", \"unix:{}\"]\nmax_connections = 64\nrequest_timeout_secs = 2\n",
        sock.display()
    );
    let cfg = mail_config(&lab, &journal, &extra);
    let service = start(&cfg, &at).await;
    let tcp = ListenAddress::parse(&at).expect("addr");
    let quick = Duration::from_secs(2);
    let ok = |v: Result<Verdict, cadenas::Error>| assert_eq!(v.expect("answered"), Verdict::Dunno);
    ok(ask(&tcp, &request("someone"), quick).await);
    ok(ask(
        &ListenAddress::parse(&format!("unix:{}", sock.display())).expect("unix"),
        &request("someone"),
        quick,
    )
    .await);

    // closed by the service: oversized, garbage, not name=value
    let oversized = vec![b'a'; 64 * 1024];
    for bad in [
        oversized,
        b"\x00\xff\xfe binary\n\n".to_vec(),
        b"no equals sign\n\n".to_vec(),
    ] {
        let mut c = tokio::net::TcpStream::connect(&at).await.expect("connect");
        let _ = c.write_all(&bad).await;
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf)).await;
        assert!(
            matches!(n, Ok(Ok(0)) | Ok(Err(_))),
            "closed, nothing answered: {n:?}"
        );
        ok(ask(&tcp, &request("someone"), quick).await);
    }

    // one byte a second: cut off after request_timeout_secs, others answered meanwhile
    let slow = tokio::spawn({
        let at = at.clone();
        async move {
            let mut c = tokio::net::TcpStream::connect(&at).await.expect("connect");
            let started = Instant::now();
            for b in request("slow").to_wire().bytes() {
                if c.write_all(&[b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                let mut buf = [0u8; 1];
                if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(1), c.read(&mut buf)).await {
                    break;
                }
            }
            started.elapsed()
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    ok(ask(&tcp, &request("someone"), quick).await);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "answered while a slow client dribbles"
    );
    let cut = slow.await.expect("slow client");
    assert!(
        cut < Duration::from_secs(5),
        "the slow client was cut off after {cut:?}"
    );

    // thousands of idle connections: at most max_connections kept, a new client still answered
    let mut idle = Vec::new();
    for _ in 0..2000 {
        idle.push(tokio::net::TcpStream::connect(&at).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    ok(ask(&tcp, &request("someone"), quick).await);
    let st = service.1.status();
    assert!(st.connections <= 64, "{st:?}");

    // pipelined requests in one write are answered in order
    let mut c = tokio::net::TcpStream::connect(&at).await.expect("connect");
    let two = format!("{}{}", request("a").to_wire(), request("b").to_wire());
    c.write_all(two.as_bytes()).await.expect("write");
    let mut got = Vec::new();
    while got.windows(2).filter(|w| w == b"\n\n").count() < 2 {
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
            .await
            .expect("in time")
            .expect("read");
        assert!(n > 0, "closed");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(String::from_utf8_lossy(&got), "action=DUNNO\n\naction=DUNNO\n\n");
    drop(idle);
    let _ = std::fs::remove_file(&sock);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_that_cannot_be_read_any_more_is_said_while_contained_accounts_stay_refused() {
    let lab = OpenLdapLab::load();
    let (victim, _) = lab.fresh_user("smtp-stale").await;
    let victim = victim.to_string();
    let journal = temp_journal("outbound-stale");
    let at = free_address();
    let cfg = mail_config(
        &lab,
        &journal,
        &format!("[outbound]\nlisten = [\"{at}\"]\njournal_poll_ms = 20\n"),
    );
    let responder = Responder::new(&cfg, &journal).await.expect("responder");
    let mut opts = ContainOptions::new(Arc::new(MemorySink::default()));
    opts.steps = vec![Step::Lock];
    responder
        .contain(std::slice::from_ref(&crate::support::one(&victim)), opts)
        .await
        .expect("contain");
    drop(responder);
    // started after the containment: the journal is read before the first answer
    let service = start(&cfg, &at).await;
    let tcp = ListenAddress::parse(&at).expect("addr");
    let v = ask(&tcp, &request(&victim), Duration::from_secs(2))
        .await
        .expect("answer");
    assert!(matches!(v, Verdict::Reject(_)), "{v:?}");
    assert_eq!(service.1.status().contained, 1);
    // the journal disappears (a disk unmounted, a wrong rotation): said in the status, the
    // answers unchanged
    let text = std::fs::read(&journal).expect("read");
    std::fs::remove_file(&journal).expect("rm");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let st = service.1.status();
    assert!(
        st.journal_error
            .as_deref()
            .is_some_and(|e| e.contains("cannot open")),
        "{st:?}"
    );
    let v = ask(&tcp, &request(&victim), Duration::from_secs(2))
        .await
        .expect("answer");
    assert!(matches!(v, Verdict::Reject(_)), "{v:?}");
    // back: read again, the error gone
    std::fs::write(&journal, text).expect("write back");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let st = service.1.status();
    assert!(st.journal_error.is_none() && st.contained == 1, "{st:?}");
    assert_eq!(
        ask(&tcp, &request("someone-else"), Duration::from_secs(2))
            .await
            .expect("answer"),
        Verdict::Dunno
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_logins_from_the_attackers_address_are_found_contained_and_what_they_sent_is_reported() {
    use cadenas::investigate::{AddressRange, Instant, Pivot, SightingKind};
    let lab = OpenLdapLab::load();
    let (v1, _) = lab.fresh_user("smtp-pivot-a").await;
    let (v2, _) = lab.fresh_user("smtp-pivot-b").await;
    let (bystander, _) = lab.fresh_user("smtp-pivot-c").await;
    let (v1, v2, bystander) = (v1.to_string(), v2.to_string(), bystander.to_string());
    let journal = temp_journal("outbound-pivot");
    let env = smtp_env();
    let postfix = format!(
        "{}log_files = [\"{}\"]\n",
        outbound_and_postfix(""),
        env["CADENAS_LAB_SMTP_LOG"]
    );
    let cfg = mail_config(&lab, &journal, &postfix);
    let (_port, at) = policy_address().await;
    let _service = start(&cfg, &at).await;
    let since = Instant::parse("10m").expect("since");
    // an address of this run's own: a re-run on the same lab must not see this one's lines
    let pid = std::process::id();
    let attacker = &format!("127.73.{}.{}", pid % 250, 1 + (pid / 250) % 250);
    let mut ids = Vec::new();
    let mut a = Smtp::login_from(attacker, &v1, &pw(&lab)).await.expect("login a");
    ids.push(
        a.send(
            "x@bank.test",
            &[
                "p1@phish-a.test",
                "p2@phish-a.test",
                &format!("{bystander}@example.test"),
            ],
            "x",
        )
        .await
        .expect("a1"),
    );
    ids.push(
        a.send("x@bank.test", &["p1@phish-a.test"], "x")
            .await
            .expect("a2"),
    );
    let mut b = Smtp::login_from(attacker, &v2, &pw(&lab)).await.expect("login b");
    ids.push(b.send("y@bank.test", &["q@phish-b.test"], "y").await.expect("b1"));
    let mut c = Smtp::login_from("127.0.0.74", &bystander, &pw(&lab))
        .await
        .expect("login c");
    ids.push(
        c.send(
            &format!("{bystander}@example.test"),
            &["friend@outside.test"],
            "z",
        )
        .await
        .expect("c1"),
    );
    // a failed SMTP login from the range: listed as tried, not contained
    let tried = Smtp::login_from(attacker, &bystander, "not-the-password").await;
    assert!(tried.is_err());

    let responder = Responder::new(&cfg, &journal).await.expect("responder");
    let mut pivot = Pivot::new(AddressRange::parse(attacker).expect("range"));
    pivot.since = Some(since);
    // Postfix writes its log through postlogd: wait for the lines
    let mut seen = responder.sightings(&pivot).await.expect("sightings");
    for _ in 0..50 {
        if seen.users.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = responder.sightings(&pivot).await.expect("sightings");
    }
    let smtp: Vec<_> = seen.sightings.iter().filter(|s| s.service == "smtp").collect();
    assert!(
        smtp.iter()
            .any(|s| s.user == v1 && s.kind == SightingKind::LoggedIn && s.count == 2),
        "{smtp:?}"
    );
    assert!(
        smtp.iter()
            .any(|s| s.user == v2 && s.kind == SightingKind::LoggedIn),
        "{smtp:?}"
    );
    assert_eq!(seen.users, [v1.clone(), v2.clone()], "{seen:?}");
    assert!(!seen.users.contains(&bystander));

    let mut opts = ContainOptions::new(Arc::new(MemorySink::default()));
    opts.changes_since = Some(since);
    let report = responder.contain_from(&pivot, opts).await.expect("contain_from");
    assert_eq!(report.users.len(), 2, "{report:?}");
    let sent = |u: &str| {
        report
            .users
            .iter()
            .find(|r| r.user == u)
            .and_then(|r| r.sent_mail.clone())
            .unwrap_or_else(|| panic!("sent mail of {u}: {report:?}"))
    };
    let s1 = sent(&v1);
    assert_eq!((s1.messages, s1.recipients), (2, 3), "{s1:?}");
    assert_eq!(s1.outside_domains, ["phish-a.test"]);
    assert_eq!(s1.client_addresses, [attacker.as_str()]);
    assert!(
        s1.describe()
            .starts_with("sent 2 message(s) to 3 recipient(s) (1 outside domain(s): phish-a.test) since "),
        "{}",
        s1.describe()
    );
    assert_eq!(sent(&v2).messages, 1);
    // the hold step found their queued mail by login: only theirs
    for u in &report.users {
        let hold = u
            .steps
            .iter()
            .find(|s| s.step == Step::HoldMail)
            .expect("hold step");
        let held = hold.detail.held_mail.as_ref().expect("held");
        assert!(
            held.messages
                .iter()
                .all(|m| m.sasl_username.as_deref() == Some(u.user.as_str())),
            "{held:?}"
        );
    }
    assert_ne!(
        queue().get(&ids[3]).map(String::as_str),
        Some("hold"),
        "the bystander's mail is untouched"
    );
    delete_queued(&ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_service_follows_a_postgresql_journal_that_responders_on_other_hosts_write() {
    use crate::support::{pg_shared_async, without_sections, PgDatabase};
    let _shared = pg_shared_async().await;
    let lab = OpenLdapLab::load();
    let pg = PgDatabase::new("outbound-follow");
    let at = free_address();
    let cfg = lab.config_with(|text| {
        format!(
            "{}\n[journal]\n{}\n[outbound]\nlisten = [\"{at}\"]\njournal_poll_ms = 50\n",
            without_sections(&text, &["journal"]),
            pg.toml_keys()
        )
    });
    let service = start(&cfg, &at).await;
    let (victim, _) = lab.fresh_user("smtp-pg").await;
    let victim = victim.to_string();
    let tcp = ListenAddress::parse(&at).expect("addr");
    let answer = |u: String| {
        let tcp = tcp.clone();
        async move {
            ask(&tcp, &request(&u), Duration::from_secs(2))
                .await
                .expect("answer")
        }
    };
    assert_eq!(answer(victim.clone()).await, Verdict::Dunno);
    // a responder on "another host" (its own connection to the shared journal) contains it
    let host = Responder::from_config(&cfg).await.expect("responder");
    let mut opts = ContainOptions::new(Arc::new(MemorySink::default()));
    opts.steps = vec![Step::Lock];
    host.contain(std::slice::from_ref(&crate::support::one(&victim)), opts)
        .await
        .expect("contain");
    let returned = Instant::now();
    while !matches!(answer(victim.clone()).await, Verdict::Reject(_)) {
        assert!(
            returned.elapsed() < Duration::from_secs(1),
            "refused within 1 s of contain returning"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // released on that host: answered DUNNO again
    host.release(
        &crate::support::one(&victim),
        cadenas::incident::ReleaseOptions::default().with_override_reason("test"),
    )
    .await
    .expect("release");
    let released = Instant::now();
    while answer(victim.clone()).await != Verdict::Dunno {
        assert!(
            released.elapsed() < Duration::from_secs(1),
            "forgotten within 1 s of the release"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let st = service.1.status();
    assert!(
        st.journal_error.is_none() && st.contained == 0 && st.records_read > 0,
        "{st:?}"
    );
}

/// `user` sends from `source` one message within a one-message limit and one over it (deferred),
/// then waits for the policy service to have decided not to contain (cap or dry run).
async fn over_the_limit_not_contained(
    lab: &OpenLdapLab,
    service: &Running,
    source: &str,
    user: &str,
    ids: &mut Vec<String>,
) {
    let mut s = Smtp::login_from(source, user, &pw(lab)).await.expect("login");
    ids.push(
        s.send("x@bank.test", &["r1@auto-target.test"], "one")
            .await
            .expect("within the limit"),
    );
    assert!(s
        .send("x@bank.test", &["r2@auto-target.test"], "two")
        .await
        .is_err());
    // the service says so once its rail refused (polled, up to 200 times)
    for _ in 0..200 {
        if service.1.status().auto_not_contained > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the rail's refusal never showed: {:?}", service.1.status());
}

/// Whether the directory shows `user` locked.
pub(crate) async fn locked(cfg: &Config, user: &str) -> bool {
    let dir = cadenas::directory::Directory::connect(&cfg.directory)
        .await
        .expect("directory");
    let u = dir
        .find_user(&cadenas::directory::UserRef::parse(user).expect("name"))
        .await
        .expect("find");
    dir.account_state(&u).await.expect("state").lock == cadenas::directory::LockState::Locked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contain_rule_locks_the_account_within_its_rails_and_a_dry_run_changes_nothing() {
    let lab = OpenLdapLab::load();
    let (a, _) = lab.fresh_user("smtp-auto-a").await;
    let (b, _) = lab.fresh_user("smtp-auto-b").await;
    let (c, _) = lab.fresh_user("smtp-auto-c").await;
    let (a, b, c) = (a.to_string(), b.to_string(), c.to_string());
    let rule = "[[outbound.limits]]\ncounts = \"messages\"\nmax = 1\nwindow_secs = 600\naction = \"DEFER_IF_PERMIT\"\ncontain = true\n";
    let (_port, at) = policy_address().await;
    let mut ids = Vec::new();

    // the rule, for real, at most one an hour
    let journal = temp_journal("outbound-auto");
    let cfg = mail_config(
        &lab,
        &journal,
        &format!(
            "{}[outbound.auto_contain]\nmax_per_hour = 1\ndry_run = false\n",
            outbound_and_postfix(rule)
        ),
    );
    let service = start(&cfg, &at).await;
    let mut s = Smtp::login_from("127.0.0.75", &a, &pw(&lab))
        .await
        .expect("login a");
    ids.push(
        s.send("x@bank.test", &["r1@auto-target.test"], "one")
            .await
            .expect("within the limit"),
    );
    let (code, _) = s
        .send("x@bank.test", &["r2@auto-target.test"], "two")
        .await
        .expect_err("over");
    assert_eq!(code, 450);
    // contained by the rule (polled, up to 150 times)
    let mut tries = 0;
    while !locked(&cfg, &a).await {
        tries += 1;
        assert!(tries < 150, "{a} contained by the rule");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // from now on refused as contained, not deferred
    let mut refused = None;
    for _ in 0..50 {
        let r = s.send("x@bank.test", &["r3@auto-target.test"], "three").await;
        if matches!(r, Err((554, _))) {
            refused = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused.is_some(), "the contained account is refused");
    let records = cadenas::journal::read(&journal).expect("journal");
    let start_note = records.iter().find_map(|r| match &r.event {
        cadenas::journal::Event::IncidentStart { note, steps, .. } => Some((note.clone(), steps.clone())),
        _ => None,
    });
    let (note, steps) = start_note.expect("a containment in the journal");
    assert!(
        note.as_deref()
            .is_some_and(|n| n.starts_with("automatic containment by the outbound policy service")),
        "{note:?}"
    );
    assert_eq!(
        steps,
        Some(vec![Step::Lock, Step::RevokeSessions, Step::HoldMail])
    );
    // a second account over the limit within the hour: the cap holds
    over_the_limit_not_contained(&lab, &service, "127.0.0.76", &b, &mut ids).await;
    assert!(!locked(&cfg, &b).await, "over the hourly cap: not contained");
    // the first containment is counted when its run ends (after its revoke and hold steps,
    // which may still be running once the account shows locked)
    for _ in 0..100 {
        if service.1.status().auto_contained > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(service.1.status().auto_contained, 1);
    drop(service);

    // a dry run (the default) says it, changes nothing
    let journal = temp_journal("outbound-auto-dry");
    let cfg = mail_config(&lab, &journal, &outbound_and_postfix(rule));
    let service = start(&cfg, &at).await;
    over_the_limit_not_contained(&lab, &service, "127.0.0.77", &c, &mut ids).await;
    assert!(!locked(&cfg, &c).await, "a dry run changes nothing");
    assert!(!journal.exists() || cadenas::journal::read(&journal).expect("journal").is_empty());
    delete_queued(&ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_own_records_rebuild_its_windows_after_a_restart_and_count_what_was_sent() {
    let lab = OpenLdapLab::load();
    let (sender, _) = lab.fresh_user("smtp-records").await;
    let sender = sender.to_string();
    let journal = temp_journal("outbound-records");
    let db = std::env::temp_dir().join(format!("cadenas-outbound-records-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&db);
    let limits = format!(
        "database = \"{}\"\n[[outbound.limits]]\ncounts = \"messages\"\nmax = 2\nwindow_secs = 600\naction = \"DEFER_IF_PERMIT\"\n",
        db.display()
    );
    let cfg = mail_config(&lab, &journal, &outbound_and_postfix(&limits));
    let (_port, at) = policy_address().await;
    let service = start(&cfg, &at).await;
    let mut ids = Vec::new();
    let mut s = Smtp::login_from("127.0.0.78", &sender, &pw(&lab))
        .await
        .expect("login");
    for i in 0..2 {
        let to = [
            format!("r{i}a@records-target.test"),
            format!("r{i}b@records-target.test"),
        ];
        ids.push(
            s.send("x@bank.test", &[&to[0], &to[1]], "x")
                .await
                .expect("within the limit"),
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(service);
    // restarted: the window holds the two messages from before, the third is deferred
    let _service = start(&cfg, &at).await;
    let mut s = Smtp::login_from("127.0.0.78", &sender, &pw(&lab))
        .await
        .expect("login again");
    let (code, text) = s
        .send("x@bank.test", &["r3@records-target.test"], "x")
        .await
        .expect_err("over the limit");
    assert_eq!(code, 450, "{text}");
    // a containment says what the account sent, from the records (no Postfix log configured)
    let responder = Responder::new(&cfg, &journal).await.expect("responder");
    let mut opts = ContainOptions::new(Arc::new(MemorySink::default()));
    opts.steps = vec![Step::Lock];
    opts.changes_since = Some(cadenas::investigate::Instant::parse("10m").expect("since"));
    let report = responder
        .contain(std::slice::from_ref(&crate::support::one(&sender)), opts)
        .await
        .expect("contain");
    let sent = report.users[0].sent_mail.clone().expect("sent mail");
    assert_eq!((sent.messages, sent.recipients), (2, 4), "{sent:?}");
    assert_eq!(sent.client_addresses, ["127.0.0.78"]);
    let mut want = ids.clone();
    want.sort();
    let mut got = sent.queue_ids.clone();
    got.sort();
    assert_eq!(got, want);
    delete_queued(&ids);
    let _ = std::fs::remove_file(&db);
}

/// Adds `member` to `group` (or takes it out), as the lab's administrator.
pub(crate) async fn member_of(admin: &mut ldap3::Ldap, group: &str, member: &str, add: bool) {
    let values = std::collections::HashSet::from([member]);
    let m = if add {
        ldap3::Mod::Add("member", values)
    } else {
        ldap3::Mod::Delete("member", values)
    };
    admin
        .modify(group, vec![m])
        .await
        .expect("modify")
        .success()
        .expect("group membership changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contain_rule_never_contains_a_protected_account() {
    let lab = OpenLdapLab::load();
    let (admin_user, dn) = lab.fresh_user("smtp-auto-protected").await;
    let admin_user = admin_user.to_string();
    let protected = lab.get("CADENAS_LAB_ADMINS_GROUP").to_owned();
    let mut admin = lab.admin().await;
    let member = dn.to_string();
    member_of(&mut admin, &protected, &member, true).await;
    let rule = "[[outbound.limits]]\ncounts = \"messages\"\nmax = 1\nwindow_secs = 600\naction = \"DEFER_IF_PERMIT\"\ncontain = true\n";
    let journal = temp_journal("outbound-auto-protected");
    let cfg = mail_config(
        &lab,
        &journal,
        &format!(
            "{}[outbound.auto_contain]\nmax_per_hour = 10\ndry_run = false\n",
            outbound_and_postfix(rule)
        ),
    );
    let (_port, at) = policy_address().await;
    let service = start(&cfg, &at).await;
    let mut ids = Vec::new();
    over_the_limit_not_contained(&lab, &service, "127.0.0.79", &admin_user, &mut ids).await;
    let unlocked = !locked(&cfg, &admin_user).await;
    member_of(&mut admin, &protected, &member, false).await;
    assert!(unlocked, "a protected account is never contained by a rule");
    assert_eq!(service.1.status().auto_contained, 0);
    let records = cadenas::journal::read(&journal).expect("journal");
    assert!(
        records.iter().any(|r| matches!(&r.event, cadenas::journal::Event::Refused { error, .. } if error.kind() == cadenas::ErrorKind::ProtectedAccount)),
        "the refusal is journaled"
    );
    delete_queued(&ids);
}
