//! Session revocation against the lab's real Dovecot, whose passdb is the lab's real
//! OpenLDAP with the auth cache on (`lab/dovecot.sh start`).

use std::sync::Arc;
use std::time::Duration;

use cadenas::directory::{Directory, Dn, UserName, UserRef};
use cadenas::session::{Dovecot, RevocationStatus, RevocationTarget, Revoker};
use cadenas::{ErrorKind, Password, Secret};

use crate::support::{dovecot_env, Imap, OpenLdapLab};

struct Lab {
    ldap: OpenLdapLab,
    imap: String,
    imap_shared: String,
    dovecot: Dovecot,
    dovecot_shared: Dovecot,
}

fn key() -> Secret {
    let env = dovecot_env();
    let k = std::fs::read_to_string(&env["CADENAS_LAB_DOVEADM_KEY_FILE"]).expect("key");
    Secret::new(k.trim().as_bytes().to_vec())
}

fn revoker(url: &str, key: &Secret) -> Dovecot {
    Dovecot::new("mail", url, key, Duration::from_secs(10)).expect("revoker")
}

fn lab() -> Lab {
    let env = dovecot_env();
    Lab {
        ldap: OpenLdapLab::load(),
        imap: env["CADENAS_LAB_IMAP"].clone(),
        imap_shared: env["CADENAS_LAB_IMAP_SHARED"].clone(),
        dovecot: revoker(&env["CADENAS_LAB_DOVEADM_URL"], &key()),
        dovecot_shared: revoker(&env["CADENAS_LAB_DOVEADM_URL_SHARED"], &key()),
    }
}

fn target(name: &UserName, dn: &Dn) -> RevocationTarget {
    RevocationTarget::new(name.as_str(), dn.as_str())
}

async fn contain_in_directory(lab: &Lab, name: &UserName) -> (Directory, Password) {
    let dir = Directory::connect(&lab.ldap.config().directory)
        .await
        .expect("connect");
    let u = dir.find_user(&UserRef::Name(name.clone())).await.expect("find");
    dir.lock(&u).await.expect("lock");
    let new = lab.ldap.config().password.generate().expect("generate");
    dir.reset_password(&u, &new, true).await.expect("reset");
    (dir, new)
}

#[tokio::test]
async fn contain_then_revoke_closes_the_attackers_session_and_the_stolen_password_fails_at_once() {
    let lab = lab();
    let pw = lab.ldap.get("CADENAS_LAB_USER_PW").to_owned();
    let (victim, dn) = lab.ldap.fresh_user("imap-victim").await;
    let (bystander, _) = lab.ldap.fresh_user("imap-bystander").await;

    // The attacker logs in with the stolen password and idles; a colleague is also connected.
    let mut attacker = Imap::login(&lab.imap, victim.as_str(), &pw)
        .await
        .expect("attacker login");
    attacker.idle().await;
    let mut colleague = Imap::login(&lab.imap, bystander.as_str(), &pw)
        .await
        .expect("colleague login");
    colleague.idle().await;

    let listed = lab
        .dovecot
        .sessions(&target(&victim, &dn))
        .await
        .expect("who")
        .expect("listable");
    assert_eq!(listed.len(), 1);

    // Directory first, then flush + kick.
    let (dir, new) = contain_in_directory(&lab, &victim).await;
    let out = lab.dovecot.revoke(&target(&victim, &dn)).await;
    assert_eq!(out.status, RevocationStatus::Revoked, "{out:?}");
    assert_eq!((out.sessions_found, out.sessions_closed), (Some(1), 1));
    assert!(
        out.cache_entries_flushed.is_some_and(|n| n >= 1),
        "the stolen password was cached: {out:?}"
    );
    assert!(out.collateral.is_empty(), "{out:?}");
    assert!(
        attacker.closed_within(5).await,
        "the attacker's session is closed"
    );
    assert!(colleague.alive().await, "other users are untouched");

    // Logging in again with the stolen password fails immediately, despite the auth cache.
    let again = Imap::login(&lab.imap, victim.as_str(), &pw).await;
    assert!(
        Imap::refused(&again),
        "stolen password refused by the server: {:?}",
        again.err()
    );
    // Locked: even the new password is refused until release.
    let locked = Imap::login(&lab.imap, victim.as_str(), new.expose_secret()).await;
    assert!(Imap::refused(&locked), "{:?}", locked.err());

    // Release (here: unlock) and the rightful user changes the forced password, then logs in.
    let u = dir.find_user(&UserRef::Name(victim.clone())).await.expect("find");
    dir.unlock(&u).await.expect("unlock");
    change_own_password(&lab.ldap, &dn, &new, "Rightful-Users-Choice-9").await;
    let mut back = Imap::login(&lab.imap, victim.as_str(), "Rightful-Users-Choice-9")
        .await
        .expect("user is back");
    assert!(back.alive().await);
}

async fn change_own_password(lab: &OpenLdapLab, dn: &Dn, old: &Password, new: &str) {
    let tls = crate::support::tls_config(lab.get("CADENAS_LAB_CA"));
    let (conn, mut ldap) = ldap3::LdapConnAsync::with_settings(
        ldap3::LdapConnSettings::new().set_config(tls),
        lab.get("CADENAS_LAB_LDAPS_URL"),
    )
    .await
    .expect("connect");
    ldap3::drive!(conn);
    assert_eq!(
        ldap.simple_bind(dn.as_str(), old.expose_secret())
            .await
            .expect("bind")
            .rc,
        0
    );
    let exop = ldap3::exop::PasswordModify {
        user_id: None,
        old_pass: Some(old.expose_secret()),
        new_pass: Some(new),
    };
    assert_eq!(ldap.extended(exop).await.expect("change").1.rc, 0);
    let _ = ldap.unbind().await;
}

#[tokio::test]
async fn without_a_flush_the_auth_cache_keeps_the_stolen_password_working() {
    // docs/FACTS.md (Dovecot): why the revoker flushes before it kicks. Seen here with LDAP auth binds.
    let lab = lab();
    let pw = lab.ldap.get("CADENAS_LAB_USER_PW").to_owned();
    let (victim, _) = lab.ldap.fresh_user("imap-cache").await;
    Imap::login(&lab.imap, victim.as_str(), &pw)
        .await
        .expect("login caches the password");
    contain_in_directory(&lab, &victim).await;
    assert!(
        Imap::login(&lab.imap, victim.as_str(), &pw).await.is_ok(),
        "the cached stolen password still logs in after lock + reset"
    );
}

#[tokio::test]
async fn a_kick_alone_lets_the_attacker_straight_back_in() {
    // docs/FACTS.md (Dovecot): a kick is not a lockout.
    let lab = lab();
    let pw = lab.ldap.get("CADENAS_LAB_USER_PW").to_owned();
    let (victim, dn) = lab.ldap.fresh_user("imap-kickonly").await;
    let mut attacker = Imap::login(&lab.imap, victim.as_str(), &pw).await.expect("login");
    attacker.idle().await;
    let out = lab.dovecot.revoke(&target(&victim, &dn)).await;
    assert_eq!(out.sessions_closed, 1);
    assert!(attacker.closed_within(5).await);
    assert!(
        Imap::login(&lab.imap, victim.as_str(), &pw).await.is_ok(),
        "directory untouched: back in"
    );
}

#[tokio::test]
async fn on_shared_processes_other_users_kicked_along_are_reported_as_collateral() {
    let lab = lab();
    let pw = lab.ldap.get("CADENAS_LAB_USER_PW").to_owned();
    let (victim, dn) = lab.ldap.fresh_user("shared-victim").await;
    let (other, _) = lab.ldap.fresh_user("shared-other").await;
    let mut a = Imap::login(&lab.imap_shared, victim.as_str(), &pw)
        .await
        .expect("login");
    a.idle().await;
    let mut b = Imap::login(&lab.imap_shared, other.as_str(), &pw)
        .await
        .expect("login");
    b.idle().await;
    contain_in_directory(&lab, &victim).await;
    let out = lab.dovecot_shared.revoke(&target(&victim, &dn)).await;
    assert_eq!(out.status, RevocationStatus::Revoked, "{out:?}");
    assert!(
        out.collateral
            .iter()
            .any(|c| c.eq_ignore_ascii_case(other.as_str())),
        "{out:?}"
    );
    assert!(a.closed_within(5).await);
    assert!(b.closed_within(5).await, "the collateral really was disconnected");
}

#[tokio::test]
async fn revocations_made_together_share_doveadm_requests_and_each_gets_its_own_outcome() {
    let lab = lab();
    let pw = lab.ldap.get("CADENAS_LAB_USER_PW").to_owned();
    let mut attacked = Vec::new();
    for i in 0..8 {
        let (name, dn) = lab.ldap.fresh_user(&format!("together-{i}")).await;
        let mut s = Imap::login(&lab.imap, name.as_str(), &pw).await.expect("login");
        s.idle().await;
        attacked.push((name, dn, s));
    }
    let (idle_a, dn_a) = lab.ldap.fresh_user("together-idle-a").await;
    let (idle_b, dn_b) = lab.ldap.fresh_user("together-idle-b").await;
    let mut targets: Vec<RevocationTarget> = attacked.iter().map(|(n, d, _)| target(n, d)).collect();
    targets.push(target(&idle_a, &dn_a));
    targets.push(target(&idle_b, &dn_b));
    let before = lab.dovecot.requests_sent();
    let outcomes = futures_util::future::join_all(targets.iter().map(|t| lab.dovecot.revoke(t))).await;
    let sent = lab.dovecot.requests_sent() - before;
    for (o, t) in outcomes.iter().zip(&targets).take(8) {
        assert_eq!(o.status, RevocationStatus::Revoked, "{}: {o:?}", t.login);
        assert_eq!(
            (o.sessions_found, o.sessions_closed, o.collateral.len()),
            (Some(1), 1, 0),
            "{}: its own session, no one else's",
            t.login
        );
    }
    for o in &outcomes[8..] {
        assert_eq!(o.status, RevocationStatus::NothingToRevoke, "{o:?}");
        assert_eq!((o.sessions_found, o.sessions_closed), (Some(0), 0), "{o:?}");
    }
    for (n, _, mut s) in attacked {
        assert!(s.closed_within(5).await, "{n}'s session closed");
    }
    // one request per user at least without sharing (and the sessions' confirmations on top)
    assert!(sent < 10, "10 users revoked together in {sent} doveadm requests");
}

#[tokio::test]
async fn doveadm_loses_a_request_whose_who_comes_after_a_command_run_as_a_user() {
    // Why commands run as a mail user (sieve) never share a request with server-wide ones
    // (core/src/session/doveadm.rs): the process has dropped to the user's privileges, `who`
    // cannot reach the root-only anvil socket, the process dies, nothing is answered.
    let lab = lab();
    let (user, _) = lab.ldap.fresh_user("sieve-then-who").await;
    let key = String::from_utf8(key().expose_secret().to_vec()).expect("key");
    let who = r#"["who",{"separateConnections":true},"w"]"#;
    let list = format!(r#"["sieveList",{{"user":"{user}"}},"s"]"#);
    let after = raw_doveadm(&key, &format!("[{list},{who}]"), false, Duration::from_secs(5)).await;
    assert!(!after.contains("HTTP/1.1 200"), "who after sieve list: {after:?}");
    let before = raw_doveadm(&key, &format!("[{who},{list}]"), false, Duration::from_secs(5)).await;
    assert!(
        before.starts_with("HTTP/1.1 200") && before.contains(r#""w"]"#) && before.contains(r#""s"]"#),
        "who before sieve list: {before:?}"
    );
}

#[tokio::test]
async fn nothing_to_kick_is_success_with_zero_sessions() {
    let lab = lab();
    let (idle_user, dn) = lab.ldap.fresh_user("imap-none").await;
    let out = lab.dovecot.revoke(&target(&idle_user, &dn)).await;
    assert_eq!(out.status, RevocationStatus::NothingToRevoke, "{out:?}");
    assert_eq!(
        (out.sessions_found, out.sessions_closed, out.cache_entries_flushed),
        (Some(0), 0, Some(0))
    );
    assert!(out.error.is_none());
}

#[tokio::test]
async fn wrong_key_dead_port_and_glob_logins_give_typed_errors_in_the_outcome() {
    let lab = lab();
    let env = dovecot_env();
    let t = RevocationTarget::new("user0001", "uid=user0001,ou=people,dc=example,dc=test");

    let wrong = revoker(
        &env["CADENAS_LAB_DOVEADM_URL"],
        &Secret::new(b"not-the-key".to_vec()),
    );
    let out = wrong.revoke(&t).await;
    assert_eq!(out.status, RevocationStatus::Failed);
    assert_eq!(out.error.as_ref().map(|e| e.kind()), Some(ErrorKind::RevokerAuth));
    assert!(!format!("{out:?}").contains("not-the-key"));

    let dead = revoker("http://127.0.0.1:9/doveadm/v1", &key());
    let out = dead.revoke(&t).await;
    assert_eq!(
        out.error.as_ref().map(|e| e.kind()),
        Some(ErrorKind::RevokerUnreachable)
    );

    for login in ["user*", "*", "us?r"] {
        let out = lab.dovecot.revoke(&RevocationTarget::new(login, "uid=x")).await;
        assert_eq!(
            out.error.as_ref().map(|e| e.kind()),
            Some(ErrorKind::InvalidUserName),
            "{login}"
        );
        assert_eq!(out.sessions_closed, 0);
    }
}

#[tokio::test]
async fn malformed_api_answers_are_protocol_errors_never_panics() {
    // Fault injection: a fake endpoint on loopback answering garbage (the real-server
    // behaviour is covered above).
    let answers: Vec<&'static [u8]> = vec![
        b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nnot json",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nContent-Length: 22\r\n\r\n[[\"doveadmResponse\",7]]",
        b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n[[\"error\",{}]]",
        b"garbage without http",
        b"",
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
    ];
    for answer in answers {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(answer).await;
            }
        });
        let r = revoker(&format!("http://127.0.0.1:{port}/doveadm/v1"), &key());
        let out = r.revoke(&RevocationTarget::new("user0001", "uid=user0001")).await;
        assert_eq!(
            out.status,
            RevocationStatus::Failed,
            "{:?}",
            String::from_utf8_lossy(answer)
        );
        let kind = out.error.as_ref().map(|e| e.kind());
        assert!(
            matches!(
                kind,
                Some(ErrorKind::RevokerProtocol) | Some(ErrorKind::RevokerFailed)
            ),
            "{kind:?} for {:?}",
            String::from_utf8_lossy(answer)
        );
        server.abort();
    }
}

#[tokio::test]
async fn revokers_build_from_the_lab_config_and_share_one_interface() {
    let lab = lab();
    let env = dovecot_env();
    let extra = std::fs::read_to_string(&env["CADENAS_LAB_REVOKERS"]).expect("revokers.toml");
    let cfg = lab.ldap.config_with(|t| format!("{t}\n{extra}"));
    let revokers: Vec<Arc<dyn Revoker>> = cadenas::session::build_revokers(&cfg.revokers).expect("build");
    assert_eq!(revokers.len(), 1);
    let (u, dn) = lab.ldap.fresh_user("imap-cfg").await;
    let outs = cadenas::session::revoke_all(&revokers, &target(&u, &dn)).await;
    assert_eq!(outs[0].revoker, "mail");
    assert_eq!(outs[0].status, RevocationStatus::NothingToRevoke);
}

#[tokio::test]
async fn dovecot_auth_binds_ignore_a_forced_password_change() {
    // Seen here: OpenLDAP answers a must-change bind with success + a ppolicy control, and
    // Dovecot's auth_bind only looks at the result code. So once an account is *released*,
    // the handed-over password reads mail before it is changed. Containment keeps the lock
    // on, which Dovecot does honour.
    let lab = lab();
    let (victim, _) = lab.ldap.fresh_user("imap-mustchange").await;
    let (dir, new) = contain_in_directory(&lab, &victim).await;
    let locked = Imap::login(&lab.imap, victim.as_str(), new.expose_secret()).await;
    assert!(
        Imap::refused(&locked),
        "locked: refused by the server: {:?}",
        locked.err()
    );
    let u = dir.find_user(&UserRef::Name(victim.clone())).await.expect("find");
    dir.unlock(&u).await.expect("unlock");
    assert!(dir.account_state(&u).await.expect("state").must_change);
    assert!(
        Imap::login(&lab.imap, victim.as_str(), new.expose_secret())
            .await
            .is_ok(),
        "must change, yet IMAP lets the password in"
    );
}

/// One raw HTTP/1.1 request to the doveadm API; what the server sent before closing or
/// before `wait` passed with nothing more to read.
async fn raw_doveadm(key: &str, body: &str, connection_close: bool, wait: Duration) -> String {
    use base64::Engine as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = url::Url::parse(&dovecot_env()["CADENAS_LAB_DOVEADM_URL"]).expect("url");
    let addr = format!("{}:{}", url.host_str().expect("host"), url.port().expect("port"));
    let mut s = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let auth = base64::engine::general_purpose::STANDARD.encode(key);
    let close = if connection_close {
        "Connection: close\r\n"
    } else {
        ""
    };
    let req = format!(
        "POST {} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: X-Dovecot-API {auth}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n{close}\r\n{body}",
        url.path(),
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("send");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(wait, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn doveadm_says_nothing_to_kick_with_http_200_and_exit_code_68() {
    let key = String::from_utf8(key().expose_secret().to_vec()).expect("key");
    let answer = raw_doveadm(
        &key,
        r#"[["kick",{"mask":"nobody-at-all-here"},"t1"]]"#,
        true,
        Duration::from_secs(5),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains(r#"["error",{"type":"exitCode","exitCode":68},"t1"]"#)
            || answer.contains(r#""exitCode":68"#),
        "{answer}"
    );
}

#[tokio::test]
async fn doveadm_never_answers_a_wrong_key_with_connection_close() {
    // Why the revoker's HTTP client sends no `Connection: close` (core/src/session/http.rs).
    let body = r#"[["who",{},"t"]]"#;
    let keep_alive = raw_doveadm("not-the-key", body, false, Duration::from_secs(3)).await;
    assert!(
        keep_alive.starts_with("HTTP/1.1 401"),
        "without it: refused, {keep_alive:?}"
    );
    let close = raw_doveadm("not-the-key", body, true, Duration::from_secs(3)).await;
    assert_eq!(close, "", "with it: no answer at all");
}

#[tokio::test]
async fn doveadm_sieve_get_gives_no_answer_to_an_array_script_name_and_answers_a_string_one() {
    // Why the Dovecot client sends `scriptname` as a string (core/src/session/dovecot.rs).
    let lab = lab();
    let (user, _) = lab.ldap.fresh_user("sieve-raw").await;
    crate::investigate::upload_sieve(&lab.ldap, user.as_str(), "r", "keep;\n", false);
    let key = String::from_utf8(key().expose_secret().to_vec()).expect("key");
    let as_array = format!(r#"[["sieveGet",{{"user":"{user}","scriptname":["r"]}},"t"]]"#);
    let answer = raw_doveadm(&key, &as_array, false, Duration::from_secs(5)).await;
    assert_eq!(answer, "", "an array: the request is aborted, no answer at all");
    let as_string = format!(r#"[["sieveGet",{{"user":"{user}","scriptname":"r"}},"t"]]"#);
    let answer = raw_doveadm(&key, &as_string, false, Duration::from_secs(5)).await;
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains(r#""sieve script":"keep;\n""#),
        "{answer}"
    );
}

/// Puts `script` as the user's active Sieve script, with `doveadm sieve put` as root (the lab's
/// Dovecot, any user of its userdbs).
fn put_active_sieve(user: &str, name: &str, script: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("doveadm")
        .args(["-c", &dovecot_env()["CADENAS_LAB_DOVECOT_CONF"]])
        .args(["sieve", "put", "-a", "-u", user, name])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("doveadm");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("script");
    let out = child.wait_with_output().expect("doveadm sieve put");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn sieve_reads_of_users_together_share_requests_and_each_user_gets_its_own_scripts() {
    // Users whose mailboxes belong to two system uids (lab/dovecot.sh: mailbox-other-uid's home
    // is readable by vmail-other only), read at the same time: Dovecot runs each command of a
    // shared request as its own user.
    let lab = lab();
    let mut users = Vec::new();
    for i in 0..6 {
        let (name, _) = lab.ldap.fresh_user(&format!("sieve-together-{i}")).await;
        users.push(name.as_str().to_owned());
    }
    users.insert(3, dovecot_env()["CADENAS_LAB_DOVECOT_OTHER_UID_USER"].clone());
    let script = |u: &str| format!("# {u}\nredirect \"{u}@elsewhere.test\";\n");
    for u in &users {
        put_active_sieve(u, "rules", &script(u));
    }
    let before = lab.dovecot.requests_sent();
    let read = futures_util::future::join_all(users.iter().map(|u| lab.dovecot.sieve_scripts(u))).await;
    let sent = lab.dovecot.requests_sent() - before;
    for (u, r) in users.iter().zip(read) {
        let scripts = r.unwrap_or_else(|e| panic!("{u}: {e}"));
        assert_eq!(scripts.len(), 1, "{u}: {scripts:?}");
        assert_eq!(
            (
                scripts[0].name.as_str(),
                scripts[0].active,
                scripts[0].text.as_str()
            ),
            ("rules", true, script(u).as_str()),
            "{u}: its own script"
        );
    }
    // alone, a list and a get per user: 14 requests
    assert!(
        sent <= 6,
        "7 users' Sieve scripts read together in {sent} doveadm requests"
    );
}

#[tokio::test]
async fn a_lost_request_of_several_users_sieve_reads_is_sent_again_user_by_user() {
    // Fault injection: an endpoint on loopback that answers a request of one command (no
    // script) and closes a request of several without an answer (the real server's lost
    // request: `doveadm_loses_a_request_whose_who_comes_after_a_command_run_as_a_user`).
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = vec![0u8; 4096];
                // the headers, then the body to its Content-Length
                let body = loop {
                    let Ok(n) = s.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    req.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&req).into_owned();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break body.to_owned();
                    }
                };
                let commands: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
                if commands.as_array().map_or(0, Vec::len) == 1 {
                    let answer = r#"[["doveadmResponse",[],"c0"]]"#;
                    let _ = s
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                                answer.len()
                            )
                            .as_bytes(),
                        )
                        .await;
                }
            });
        }
    });
    let r = revoker(&format!("http://127.0.0.1:{port}/doveadm/v1"), &key());
    let users = ["lost-a", "lost-b", "lost-c", "lost-d"];
    let read = futures_util::future::join_all(users.iter().map(|u| r.sieve_scripts(u))).await;
    for (u, scripts) in users.iter().zip(&read) {
        assert!(scripts.as_ref().is_ok_and(Vec::is_empty), "{u}: {scripts:?}");
    }
    // the first alone, the three others together (lost), then each of them alone
    assert_eq!(r.requests_sent(), 5);
    // and from then on alone, without losing a request first
    let read = futures_util::future::join_all(users.iter().map(|u| r.sieve_scripts(u))).await;
    assert!(
        read.iter().all(|s| s.as_ref().is_ok_and(Vec::is_empty)),
        "{read:?}"
    );
    assert_eq!(r.requests_sent(), 5 + users.len() as u64);
    server.abort();
}
