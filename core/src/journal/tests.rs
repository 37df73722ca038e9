//! The journal's own tests: writer sharing, the chain, MACs, torn records.

use std::path::PathBuf;

use super::chain::{seal, unseal};
use super::*;
use crate::error::ErrorKind;

fn tmp(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("cadenas-journal-{tag}-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[tokio::test]
async fn one_writer_at_a_time_and_dropping_the_last_clone_releases_the_file() {
    let p = tmp("one-writer");
    let j = Journal::open(&p).expect("open");
    let clone = j.clone();
    // opened again in this process (a responder per thread): the same writer, one chain
    let again = Journal::open(&p).expect("a second open in this process shares the writer");
    again.append("INC", vec![intent("t")]).await.expect("append");
    assert_eq!(again.head(), j.head(), "one writer");
    let other_key = Journal::open_with_key(
        &p,
        Some(crate::secret::Secret::new(b"another key of 16+ bytes".to_vec())),
    );
    assert_eq!(other_key.expect_err("another key").kind(), ErrorKind::Journal);
    drop(again);
    drop(j);
    clone
        .append("INC", vec![intent("u")])
        .await
        .expect("a clone still writes");
    drop(clone);
    // the writer thread was joined by the drop: the lock is free at once
    let again = Journal::open(&p).expect("free after the last clone is dropped");
    again.append("INC", vec![intent("v")]).await.expect("append");
    assert_eq!(verify(&p).expect("verify").records, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_fsyncs() {
    let p = tmp("group-commit");
    let j = Journal::open(&p).expect("open");
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let j = j.clone();
            tokio::spawn(async move { j.append("INC", vec![intent(&format!("u{i}"))]).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("append");
    }
    let v = verify(&p).expect("verify");
    assert_eq!(v.records, 200);
    assert_eq!(j.head(), v.head, "the writer's head is the file's");
    let batches = j.batches_written();
    assert!(batches < 200, "200 appends in {batches} fsyncs: none shared");
}

#[test]
fn a_symbolic_link_is_never_opened_as_a_journal() {
    let target = tmp("symlink-target");
    std::fs::write(&target, "").expect("target");
    let link = tmp("symlink");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let e = Journal::open(&link).expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::Journal, "{e}");
    assert_eq!(
        std::fs::read(&target).expect("read"),
        b"",
        "nothing written through it"
    );
    let _ = std::fs::remove_file(&link);
    let _ = std::fs::remove_file(&target);
}

#[tokio::test]
async fn with_a_key_a_rewritten_journal_is_caught_at_its_first_forged_record() {
    let key = crate::secret::Secret::new(b"a journal key of 32 bytes.......".to_vec());
    let p = tmp("mac");
    let j = Journal::open_with_key(&p, Some(key.clone())).expect("open");
    j.append("INC", (0..4).map(|i| intent(&format!("u{i}"))).collect())
        .await
        .expect("append");
    drop(j);
    let r = verify_with_key(&p, Some(&key)).expect("verify");
    assert!(r.first_bad.is_none() && r.macs_checked && r.records == 4, "{r:?}");
    let good = std::fs::read_to_string(&p).expect("read");

    // a forger rewrites everything from record 3 on, chain and own hashes recomputed —
    // but without the key: the chain alone is intact, the MACs are not
    let lines: Vec<&str> = good.lines().collect();
    let mut forged: Vec<String> = lines[..2].iter().map(|l| (*l).to_owned()).collect();
    let mut prev = unseal(lines[1]).map(|(_, h, _)| h.to_owned()).expect("sealed");
    for (i, l) in lines[2..].iter().enumerate() {
        let (content, _, _) = unseal(l).expect("sealed");
        let mut rec: Record = serde_json::from_str(&content).expect("record");
        rec.prev = prev.clone();
        if i == 0 {
            rec.event = intent("someone-else");
        }
        let content = serde_json::to_string(&rec).expect("json");
        let (line, hash) = seal(
            &content,
            Some(&crate::secret::Secret::new(b"the forger's own key".to_vec())),
        );
        forged.push(line);
        prev = hash;
    }
    std::fs::write(&p, forged.join("\n") + "\n").expect("write");
    assert!(
        verify(&p).expect("v").first_bad.is_none(),
        "without the key it looks intact"
    );
    let bad = verify_with_key(&p, Some(&key))
        .expect("v")
        .first_bad
        .expect("caught");
    assert_eq!(bad.line, 3, "{}", bad.reason);
    assert!(bad.reason.contains("MAC"), "{}", bad.reason);
    assert_eq!(
        Journal::open_with_key(&p, Some(key)).expect_err("refused").kind(),
        ErrorKind::JournalTampered
    );
    std::fs::remove_file(&p).ok();
}

#[tokio::test]
async fn a_record_torn_by_a_crash_is_cut_off_while_an_edit_stays_a_broken_chain() {
    let p = tmp("torn");
    let j = Journal::open(&p).expect("open");
    j.append("INC", (0..3).map(|i| intent(&format!("u{i}"))).collect())
        .await
        .expect("append");
    drop(j);
    let good = std::fs::read_to_string(&p).expect("read");
    let last = good.lines().last().expect("line").to_owned();
    // SIGKILL in the middle of writing a fourth record
    std::fs::write(&p, format!("{good}{}", &last[..last.len() / 2])).expect("write");
    let r = verify(&p).expect("verify");
    assert_eq!((r.records, r.first_bad.clone()), (3, None), "{r:?}");
    assert_eq!(r.torn_tail.map(|t| t.line), Some(4));
    let j = Journal::open(&p).expect("a torn tail does not make the journal unusable");
    assert_eq!(j.torn_tail().map(|t| t.line), Some(4));
    j.append("INC", vec![intent("after")]).await.expect("append");
    drop(j);
    let recs = read(&p).expect("read");
    assert_eq!((recs.len(), recs[3].seq), (4, 3));
    assert!(verify(&p).expect("v").torn_tail.is_none());

    // the same cut in the middle of the file is damage, not a crash
    let lines: Vec<&str> = good.lines().collect();
    let middle = format!(
        "{}\n{}\n{}\n",
        lines[0],
        &lines[1][..lines[1].len() / 2],
        lines[2]
    );
    std::fs::write(&p, middle).expect("write");
    let r = verify(&p).expect("verify");
    assert_eq!(r.first_bad.map(|b| b.line), Some(2));
    assert!(r.torn_tail.is_none());
    std::fs::remove_file(&p).ok();
}

/// A lock intent for `u` (also for the tail's tests).
pub(super) fn intent(u: &str) -> Event {
    Event::Intent {
        user: u.into(),
        dn: format!("uid={u}"),
        step: Step::Lock,
    }
}

#[tokio::test]
async fn appends_chain_and_verify_then_reopen_continues_the_chain() {
    let p = tmp("chain");
    {
        let j = Journal::open(&p).expect("open");
        j.append("INC-1", vec![intent("a"), intent("b")])
            .await
            .expect("append");
        let futs: Vec<_> = (0..50)
            .map(|i| {
                let j = j.clone();
                tokio::spawn(async move { j.append("INC-1", vec![intent(&format!("u{i}"))]).await })
            })
            .collect();
        for f in futs {
            f.await.expect("join").expect("append");
        }
    }
    let r = verify(&p).expect("verify");
    assert_eq!((r.records, r.first_bad.clone()), (52, None));
    let j = Journal::open(&p).expect("reopen");
    j.append("INC-2", vec![intent("c")]).await.expect("append");
    drop(j);
    let recs = read(&p).expect("read");
    assert_eq!(recs.len(), 53);
    assert_eq!(recs[52].seq, 52);
    assert_eq!(recs[52].incident, "INC-2");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&p).expect("meta").permissions());
    assert_eq!(mode & 0o777, 0o600);
    std::fs::remove_file(&p).ok();
}

#[tokio::test]
async fn edits_deletions_and_insertions_are_detected_at_the_first_bad_line() {
    let p = tmp("tamper");
    let j = Journal::open(&p).expect("open");
    j.append("INC", (0..5).map(|i| intent(&format!("u{i}"))).collect())
        .await
        .expect("append");
    drop(j);
    let good = std::fs::read_to_string(&p).expect("read");
    let lines: Vec<&str> = good.lines().collect();

    let edited = good.replacen("uid=u2", "uid=zz", 1);
    std::fs::write(&p, &edited).expect("write");
    let bad = verify(&p).expect("v").first_bad.expect("bad");
    assert_eq!(bad.line, 3, "the edited record itself is named (its own hash)");
    assert!(bad.reason.contains("edited"), "{}", bad.reason);

    let deleted = [&lines[..1], &lines[2..]].concat().join("\n") + "\n";
    std::fs::write(&p, deleted).expect("write");
    assert_eq!(verify(&p).expect("v").first_bad.map(|b| b.line), Some(2));

    let inserted = [&lines[..2], &[lines[1]], &lines[2..]].concat().join("\n") + "\n";
    std::fs::write(&p, inserted).expect("write");
    assert_eq!(verify(&p).expect("v").first_bad.map(|b| b.line), Some(3));

    std::fs::write(&p, format!("{good}garbage\n")).expect("write");
    assert_eq!(verify(&p).expect("v").first_bad.map(|b| b.line), Some(6));
    assert_eq!(
        Journal::open(&p).expect_err("refused").kind(),
        ErrorKind::JournalTampered
    );
    std::fs::remove_file(&p).ok();
}
