"""`import cadenas` against the lab's real OpenLDAP and Samba AD DC."""

from __future__ import annotations

import _thread
import gc
import imaplib
import json
import logging
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path

import pyotp
import pytest
from conftest import ROOT, Lab, ldap, read_env

import cadenas

FIXTURES = ROOT / "fixtures" / "totp"


def test_contain_plan_release_on_both_flavours(directory: Lab, tmp_path: Path) -> None:
    user, dn = directory.fresh_user("c")
    r = cadenas.Responder.from_config(directory.config)
    plan = r.plan([user])
    assert plan.users[0].dn is not None and plan.users[0].refused is None
    assert [s.step for s in plan.users[0].steps] == list(cadenas.Step)[:4]
    assert r.status(user).lock.state == "unlocked", "plan changed nothing"

    pw_file = tmp_path / "pw.tsv"
    report = r.contain([user], password_file=pw_file, reason="SIEM alert 4711")
    assert isinstance(report, cadenas.ContainReport)
    assert report.done == 1 and report.failed == 0, report
    u = report.users[0]
    assert u.complete and u.dn and u.dn.lower() == dn.lower()
    lock = u.step(cadenas.Step.LOCK)
    assert lock is not None and lock.status is cadenas.StepStatus.CHANGED
    assert lock.detail.change is not None and lock.detail.change.action == "lock"
    assert [p.predicted for p in plan.users[0].steps] == [s.status for s in u.steps]
    assert report.to_dict()["users"][0]["steps"][0]["status"] == "changed"
    assert report.password_handover == f"file:{pw_file}"
    assert pw_file.read_text().startswith(f"{user}\t")

    state = r.status(user)
    assert state.lock.state == "locked" and state.must_change and state.mfa_required is True

    with pytest.raises(cadenas.ReleaseRefused) as e:
        r.release(user)
    assert e.value.code == 500 and e.value.kind == "release_refused"
    released = r.release(user, override_reason="identity checked in person, ticket 4711")
    before = lock.detail.change.before
    assert {k: released.change.after[k] for k in before} == before
    assert r.status(user).lock.state == "unlocked"

    v = cadenas.verify_journal(directory.journal)
    assert v.intact and v.records > 0
    notes = [json.loads(line).get("note") for line in directory.journal.read_text().splitlines()]
    assert "SIEM alert 4711" in notes


def test_refusals_and_unknown_users_are_reported_per_user(openldap: Lab) -> None:
    user, _ = openldap.fresh_user("r")
    r = cadenas.Responder.from_config(openldap.config)
    report = r.contain([user, "ghost-nobody", "admin0001"], on_password=lambda u, d, p: None)
    kinds = [u.refused.kind if u.refused else None for u in report.users]
    assert kinds == [None, "user_not_found", "protected_account"]
    assert report.done == 1 and report.failed == 2
    assert [u.user for u in report.needs_attention()] == ["ghost-nobody", "admin0001"]


def test_exceptions_carry_the_stable_code_and_are_typed(openldap: Lab, tmp_path: Path) -> None:
    r = cadenas.Responder.from_config(openldap.config)
    with pytest.raises(cadenas.UserNotFound) as nf:
        r.status("ghost-nobody")
    assert nf.value.code == 206 and isinstance(nf.value, cadenas.CadenasError)
    with pytest.raises(cadenas.InvalidUserName) as bad:
        r.status("user*")
    assert isinstance(bad.value, ValueError) and bad.value.code == 205
    with pytest.raises(cadenas.OutOfScope):
        r.status("dn:uid=x,ou=elsewhere,dc=example,dc=test")
    with pytest.raises(TypeError):
        r.plan(42)  # type: ignore[arg-type]
    with pytest.raises(cadenas.InvalidInput) as nowhere:
        r.contain(["someone"])  # nowhere to hand the password over
    assert isinstance(nowhere.value, ValueError) and nowhere.value.code == 102

    text = openldap.config.read_text()
    plain = text.replace('url = "ldaps://127.0.0.1:6360"', 'url = "ldap://127.0.0.1:3890"')
    with pytest.raises(cadenas.InsecureTransport) as ins:
        cadenas.Responder.from_toml(plain, journal=tmp_path / "j1.jsonl")
    assert ins.value.code == 204
    with pytest.raises(cadenas.Config):
        cadenas.Responder.from_toml(text.replace("base_dns", "base_dnz"), journal=tmp_path / "j2.jsonl")
    wrong = tmp_path / "wrong.pw"
    wrong.write_text("not-the-password\n")
    bad_pw = text.replace(openldap.env["CADENAS_LAB_RESPONDER_PW_FILE"], str(wrong))
    with pytest.raises(cadenas.ServiceBind) as sb:
        cadenas.Responder.from_toml(bad_pw, journal=tmp_path / "j3.jsonl")
    assert sb.value.ldap_rc == 49


def test_every_core_error_kind_has_its_exception_class() -> None:
    kinds = cadenas.error_kinds()
    assert len(kinds) >= 34
    for name, code in kinds:
        cls = cadenas._errors.BY_KIND[name]
        assert issubclass(cls, cadenas.CadenasError) and cls.code == code
        assert getattr(cadenas, cls.__name__) is cls


def test_mfa_enrol_verify_with_pyotp_replay_and_recovery_codes(openldap: Lab) -> None:
    mfa = cadenas.Mfa.from_config(openldap.config)
    user, _ = openldap.fresh_user("m")
    e = mfa.enroll(user)
    assert e.uri.reveal().startswith("otpauth://totp/")
    assert "<svg" in e.qr_svg.reveal()
    totp = pyotp.parse_uri(e.uri.reveal())
    assert isinstance(totp, pyotp.TOTP) and totp.secret == e.secret.reveal()
    now = int(time.time())
    code = totp.at(now)
    v = mfa.verify(user, code, now=now)
    assert v.activated and v.step == now // 30
    assert mfa.enrolment_state(user) == "active"
    with pytest.raises(cadenas.MfaReplayed) as rep:
        mfa.verify(user, code, now=now)
    assert rep.value.code == 402
    with pytest.raises(cadenas.MfaBadCode):
        mfa.verify(user, "000000" if code != "000000" else "111111", now=now + 30)
    codes = mfa.recovery_codes(user)
    assert len(codes) == 10 and all(repr(c) == "Secret(<redacted>)" for c in codes)
    mfa.use_recovery_code(user, codes[0].reveal())
    with pytest.raises(cadenas.MfaRecoveryCode):
        mfa.use_recovery_code(user, codes[0].reveal())
    assert mfa.reset(user) is True and mfa.enrolment_state(user) is None


def test_the_shared_rfc_vectors_through_the_binding() -> None:
    f4226 = json.loads((FIXTURES / "rfc4226.json").read_text())
    secret = f4226["secret_ascii"].encode()
    for v in f4226["vectors"]:
        assert cadenas.hotp(secret, v["counter"]) == v["code"]
    f6238 = json.loads((FIXTURES / "rfc6238.json").read_text())
    checked = 0
    for alg in ("sha1", "sha256", "sha512"):
        s = f6238["secrets_ascii"][alg].encode()
        for v in f6238["vectors"]:
            assert cadenas.totp_code(s, v["time"], digits=8, algorithm=alg) == v[alg]
            assert cadenas.totp_verify(s, v[alg], v["time"], digits=8, algorithm=alg) == v["time"] // 30
            checked += 1
    assert checked == 18


def test_authenticate_password_then_code(openldap: Lab) -> None:
    user, _ = openldap.fresh_user("a")
    r = cadenas.Responder.from_config(openldap.config)
    auth = cadenas.Authenticator.from_config(openldap.config)
    assert auth.authenticate(user, openldap.user_password) is cadenas.AuthOutcome.OK
    assert auth.authenticate(user, "wrong-password") is cadenas.AuthOutcome.BAD_PASSWORD
    assert auth.authenticate("ghost-nobody", "x") is cadenas.AuthOutcome.BAD_PASSWORD
    got: list[cadenas.Secret] = []
    r.contain([user], on_password=lambda u, d, p: got.append(p))
    r.release(user, override_reason="test")
    new = got[0]
    assert cadenas.authenticate(str(openldap.config), user, new) is cadenas.AuthOutcome.MUST_CHANGE


def test_secrets_never_show_in_repr_str_logs_or_tracebacks(
    openldap: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="cadenas")
    user, _ = openldap.fresh_user("s")
    r = cadenas.Responder.from_config(openldap.config)
    got: list[tuple[str, cadenas.Secret]] = []
    report = r.contain([user], on_password=lambda u, d, p: got.append((u, p)))
    assert report.done == 1 and len(got) == 1
    secret = got[0][1]
    value = secret.reveal()
    assert len(value) == 20 and len(secret) == 20
    for shown in (repr(secret), str(secret), f"{secret}", repr(report), json.dumps(report.to_dict())):
        assert value not in shown
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    assert caplog.records, "the tracing bridge delivered nothing"
    assert all(rec.name.startswith("cadenas") for rec in caplog.records)
    assert value not in caplog.text
    mfa = cadenas.Mfa.from_config(openldap.config)
    e = mfa.enroll(user)
    assert e.secret.reveal() not in repr(e)

    def boom(u: str, d: str, p: cadenas.Secret) -> None:
        raise RuntimeError(f"cannot store {p.reveal()}")

    user2, _ = openldap.fresh_user("s")
    failed = r.contain([user2], on_password=boom)
    step = failed.users[0].step(cadenas.Step.RESET_PASSWORD)
    assert step is not None and step.status is cadenas.StepStatus.FAILED
    assert step.detail.error is not None and "RuntimeError" in step.detail.error.message
    assert "cannot store" not in json.dumps(failed.to_dict())
    assert r.status(user2).lock.state == "locked", "an undeliverable password leaves the account locked"
    try:
        r.status("user*")
    except cadenas.InvalidUserName:
        assert value not in traceback.format_exc()


def test_a_run_of_thousands_queues_only_the_records_a_cadenas_logger_lets_through(
    openldap: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    # 4000 locks make about 12 000 debug events; when every event was queued whatever the
    # levels, 2000 of them were dropped and a warning said so
    caplog.set_level(logging.INFO, logger="cadenas")
    users = openldap.fresh_users_without_password(4000, "q")
    r = cadenas.Responder.from_config(openldap.config)
    report = r.contain(users, reset=False, revoke=False, require_mfa=False)
    assert report.done == 4000
    assert not [rec for rec in caplog.records if "dropped" in rec.getMessage()], caplog.text
    assert any(rec.levelno == logging.INFO for rec in caplog.records), "INFO records still come through"
    assert not [rec for rec in caplog.records if rec.levelno < logging.INFO]
    # a logger under `cadenas` set lower than `cadenas` itself still gets its records
    caplog.set_level(logging.DEBUG, logger="cadenas.incident.run")
    caplog.clear()
    user, _ = openldap.fresh_user("q")
    r.contain([user], reset=False, revoke=False, require_mfa=False)
    debug = [rec for rec in caplog.records if rec.levelno == logging.DEBUG]
    assert debug and all(rec.name == "cadenas.incident.run" for rec in debug), caplog.text


def test_the_gil_is_released_during_a_containment(openldap: Lab, tmp_path: Path) -> None:
    users = openldap.fresh_users(40, "g")
    r = cadenas.Responder.from_config(openldap.config)
    ticks = 0
    done = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    before = ticks
    # no Python callback runs during the call: only a released GIL lets the other thread run
    report = r.contain(users, password_file=tmp_path / "pw.tsv", concurrency=4)
    during = ticks - before
    done.set()
    t.join()
    assert report.done == 40
    assert during > 20, f"the other thread ran only {during} times during the containment"


def test_responders_opened_per_thread_on_one_journal_share_its_writer(openldap: Lab, tmp_path: Path) -> None:
    """A daemon opens one responder per worker thread at start-up, all on one journal: none
    is refused, each contains its user, and the journal holds one intact chain."""
    users = openldap.fresh_users(4, "t")
    journal = tmp_path / "shared.jsonl"
    responders = [cadenas.Responder.from_config(openldap.config, journal=journal) for _ in users]
    reports: list[cadenas.ContainReport] = []
    errors: list[BaseException] = []

    def work(r: cadenas.Responder, user: str, i: int) -> None:
        try:
            reports.append(
                r.contain(
                    user,
                    password_file=tmp_path / f"pw{i}.tsv",
                )
            )
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [
        threading.Thread(target=work, args=(r, u, i)) for i, (r, u) in enumerate(zip(responders, users))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(r.users[0].user for r in reports) == sorted(users)
    assert all(r.done == 1 for r in reports)
    v = cadenas.verify_journal(str(journal))
    assert v.first_bad is None and v.records >= 4 * 9, v


def test_two_processes_on_one_journal_write_one_intact_chain(openldap: Lab, tmp_path: Path) -> None:
    """Two scripts started at once on one journal file: the second waits for the first's
    writer (the file's lock), neither fails, and the journal holds both runs in one chain."""
    users = openldap.fresh_users(2, "pp")
    script = (
        "import sys, cadenas\n"
        "r = cadenas.Responder.from_config(sys.argv[1])\n"
        "rep = r.contain(sys.argv[2], password_file=sys.argv[3])\n"
        "sys.exit(0 if rep.done == 1 else 1)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(openldap.config), u, str(tmp_path / f"pw{i}.tsv")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i, u in enumerate(users)
    ]
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode()
    v = cadenas.verify_journal(str(openldap.journal))
    assert v.first_bad is None and v.records >= 2 * 9, v
    records = [json.loads(line) for line in openldap.journal.read_text().splitlines()]
    runs = {r["incident"] for r in records if r["event"] == "incident_start"}
    assert len(runs) == 2, runs


def test_ctrl_c_stops_at_a_step_boundary_and_resume_finishes(directory: Lab, tmp_path: Path) -> None:
    openldap = directory  # both flavours
    users = openldap.fresh_users(30, "k")
    r = cadenas.Responder.from_config(openldap.config)
    seen: list[int] = []

    def progress(p: cadenas.Progress) -> None:
        seen.append(p.finished)
        if p.finished == 3:
            _thread.interrupt_main()  # what Ctrl-C does

    with pytest.raises(KeyboardInterrupt):
        r.contain(users, password_file=tmp_path / "first.tsv", progress=progress, concurrency=2)
    first = (tmp_path / "first.tsv").read_text().splitlines()
    assert 3 <= len(first) < 30, "stopped early, after the users in flight"
    report = r.resume(password_file=tmp_path / "second.tsv")
    assert report.done == 30 and report.failed == 0
    handed = {line.split("\t")[0] for line in first + (tmp_path / "second.tsv").read_text().splitlines()}
    assert handed == set(users)
    assert cadenas.verify_journal(openldap.journal).intact
    for u in users[:3] + users[-3:]:
        assert r.status(u).lock.state == "locked"


def test_progress_accepts_any_callable_and_its_exception_stops_the_run(openldap: Lab) -> None:
    users = openldap.fresh_users(6, "p")
    r = cadenas.Responder.from_config(openldap.config)
    calls: list[cadenas.Progress] = []
    report = r.contain(users, on_password=lambda u, d, p: None, progress=calls.append)
    assert [c.finished for c in calls] == list(range(1, 7)) and calls[-1].total == 6
    assert report.done == 6

    def fail(p: cadenas.Progress) -> None:
        raise ValueError("stop here")

    more = openldap.fresh_users(6, "p")
    with pytest.raises(ValueError, match="stop here"):
        r.contain(more, on_password=lambda u, d, p: None, progress=fail, concurrency=1)
    assert r.resume(on_password=lambda u, d, p: None).done == 6


def test_a_handle_refuses_to_work_in_a_forked_child(openldap: Lab, tmp_path: Path) -> None:
    r = cadenas.Responder.from_config(openldap.config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads, Python >= 3.12
        pid = os.fork()
    if pid == 0:  # the child: tokio and the connections did not survive the fork
        try:
            r.status("someone")
        except cadenas.InvalidContext as e:
            code = 0 if e.code == 104 else 3
        except BaseException:
            os._exit(2)
        else:
            os._exit(1)
        try:  # a fresh handle works here; freeing the pre-fork one leaves the parent's alone
            fresh = cadenas.Responder.from_config(openldap.config, journal=tmp_path / "child.jsonl")
            fresh.status("nobody-here")
        except cadenas.UserNotFound:
            pass
        except BaseException:
            os._exit(4)
        del r
        gc.collect()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert r.status(openldap.fresh_user("f")[0]).lock.state == "unlocked", "the parent's handle still works"


def test_a_containment_without_reset_needs_no_password_sink(openldap: Lab) -> None:
    user, _ = openldap.fresh_user("n")
    r = cadenas.Responder.from_config(openldap.config)
    report = r.contain(user, reset=False, revoke=False)
    assert [s.step for s in report.users[0].steps] == [cadenas.Step.LOCK, cadenas.Step.REQUIRE_MFA]
    assert report.users[0].complete and report.password_handover == "none (no reset)"
    state = r.status(user)
    assert state.lock.state == "locked" and not state.must_change and state.mfa_required
    auth = cadenas.Authenticator.from_config(openldap.config)
    assert auth.authenticate(user, openldap.user_password) is cadenas.AuthOutcome.LOCKED


def test_every_public_object_has_a_docstring() -> None:
    import inspect

    missing = []
    for name in cadenas.__all__:
        obj = getattr(cadenas, name)
        if not (obj.__doc__ or "").strip():
            missing.append(name)
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            for attr, value in vars(obj).items():
                if attr.startswith("_") or not (
                    callable(value) or isinstance(value, (classmethod, property))
                ):
                    continue
                func = value.__func__ if isinstance(value, classmethod) else value
                if not (getattr(func, "__doc__", None) or "").strip():
                    missing.append(f"{name}.{attr}")
    assert missing == []


def test_a_tqdm_progress_bar_works(openldap: Lab) -> None:
    import io

    from tqdm import tqdm

    users = openldap.fresh_users(5, "t")
    out = io.StringIO()
    with tqdm(total=len(users), file=out) as bar:
        report = cadenas.Responder.from_config(openldap.config).contain(
            users, on_password=lambda u, d, p: None, progress=lambda p: bar.update(1)
        )
        assert bar.n == 5
    assert report.done == 5 and "5/5" in out.getvalue()


def test_follow_the_attacker_from_its_address(mail: Lab, tmp_path: Path) -> None:
    """An attacker from one address uses a stolen password: the pivot finds the account (live
    and in the login log), contain_from contains it and kicks the address, one report shape."""
    attacker_ip = f"127.69.{os.getpid() % 250}.{1 + (os.getpid() // 250) % 250}"
    host, port = mail.env["CADENAS_LAB_IMAP"].split(":")

    class FromAttacker(imaplib.IMAP4):
        def _create_socket(self, timeout: float | None) -> socket.socket:
            return socket.create_connection((self.host, self.port), timeout, source_address=(attacker_ip, 0))

    victim, _ = mail.fresh_user("piv")
    session = FromAttacker(host, int(port))
    session.login(victim, mail.user_password)
    r = cadenas.Responder.from_config(mail.config)

    seen = r.sightings(attacker_ip, since="1h")
    assert seen.users == [victim]
    kinds = {s.kind for s in seen.sightings}
    assert kinds == {cadenas.SightingKind.LIVE_SESSION, cadenas.SightingKind.LOGGED_IN}
    assert seen.range == f"{attacker_ip}/32"
    with pytest.raises(cadenas.InvalidInput):
        r.sightings("127.0.0.1/33")
    with pytest.raises(cadenas.InvalidInput):
        r.sightings(attacker_ip, since="yesterday-ish")

    plan = r.plan_from(f"{attacker_ip}/32", since="1h")
    assert plan.pivot is not None and plan.pivot.users == [victim]
    assert any(f"kick mask={attacker_ip}/32" in a for a in plan.address_actions)

    report = r.contain_from(attacker_ip, since="1h", password_file=tmp_path / "pw.tsv")
    assert [u.user for u in report.users] == [victim] and report.done == 1
    assert report.pivot is not None and report.pivot.users == [victim]
    assert [k.revoker for k in report.address_kicks] == ["mail"]
    assert report.to_dict()["pivot"]["users"] == [victim]
    with pytest.raises(imaplib.IMAP4.abort):
        session.noop()
    session.shutdown()
    assert r.status(victim).lock.state == "locked"
    assert r.status(victim).mail_rules == []


def test_the_attackers_queued_mail_is_held_and_what_it_sent_is_counted(mail: Lab, tmp_path: Path) -> None:
    """SMTP from the attacker's address with a stolen password: the pivot finds the login in
    Postfix's log, the containment holds the queued message and says what the account sent."""
    import smtplib
    import ssl

    smtp = read_env("smtp/lab.env")
    attacker_ip = f"127.70.{os.getpid() % 250}.{1 + (os.getpid() // 250) % 250}"
    config = tmp_path / "outbound.toml"
    config.write_text(
        mail.config.read_text()
        + f'\n[postfix]\nconfig_dir = "{smtp["CADENAS_LAB_SMTP_CONFIG_DIR"]}"\n'
        + f'log_files = ["{smtp["CADENAS_LAB_SMTP_LOG"]}"]\n'
    )
    victim, _ = mail.fresh_user("smtp")
    host, port = smtp["CADENAS_LAB_SMTP_STARTTLS"].split(":")
    with smtplib.SMTP(host, int(port), source_address=(attacker_ip, 0)) as s:
        s.starttls(context=ssl.create_default_context(cafile=mail.env["CADENAS_LAB_CA"]))
        s.login(victim, mail.user_password)
        s.sendmail("ceo@bank.test", ["a@phish-py.test", "b@phish-py.test"], "Subject: x\r\n\r\nclick\r\n")
    r = cadenas.Responder.from_config(config)
    for _ in range(50):  # Postfix writes its log through postlogd
        if r.sightings(attacker_ip, since="1h").users == [victim]:
            break
        time.sleep(0.1)
    report = r.contain_from(attacker_ip, since="1h", password_file=tmp_path / "pw.tsv")
    u = report.users[0]
    assert u.user == victim
    hold = u.step(cadenas.Step.HOLD_MAIL)
    assert hold is not None and hold.detail.held_mail is not None
    held = hold.detail.held_mail
    assert isinstance(held, cadenas.HeldMail) and len(held.messages) == 1
    assert held.outside_domains == ["phish-py.test"]
    assert held.messages[0].sasl_username == victim
    assert isinstance(u.sent_mail, cadenas.SentMail)
    assert (u.sent_mail.messages, u.sent_mail.recipients) == (1, 2)
    assert u.sent_mail.client_addresses == [attacker_ip]
    assert u.to_dict()["sent_mail"]["outside_domains"] == ["phish-py.test"]
    subprocess.run(
        ["postsuper", "-c", smtp["CADENAS_LAB_SMTP_CONFIG_DIR"], "-d", held.messages[0].queue_id],
        check=True,
        capture_output=True,
    )


def test_notifications_are_in_the_reports(openldap: Lab, tmp_path: Path) -> None:
    told = tmp_path / "told.txt"
    cfg = tmp_path / "notify.toml"
    cfg.write_text(
        openldap.config.read_text()
        + '\n[[notify]]\nname = "sms"\ntype = "command"\nevents = ["contained", "released"]\n'
        + f'program = "/usr/bin/tee"\nargs = ["-a", "{told}"]\n'
    )
    user, _ = openldap.fresh_user("ntf")
    r = cadenas.Responder.from_config(cfg)
    report = r.contain(user, on_password=lambda u, d, p: None)
    assert [(n.notifier, n.event, n.delivered) for n in report.notifications] == [
        ("sms", cadenas.NotifyEvent.CONTAINED, True)
    ]
    assert report.to_dict()["notifications"][0]["users"] == [user]
    released = r.release(user, override_reason="test")
    assert [n.event for n in released.notifications] == [cadenas.NotifyEvent.RELEASED]
    assert user in told.read_text()


def test_a_servers_text_reaches_python_logging_on_one_line(
    openldap: Lab, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # a notifier whose failure text (its standard error: outside data) holds a newline
    cfg = tmp_path / "notify.toml"
    cfg.write_text(
        openldap.config.read_text()
        + '\n[[notify]]\nname = "sms"\ntype = "command"\nevents = ["contained"]\n'
        + 'program = "/bin/sh"\n'
        + 'args = ["-c", "printf \'gateway down\\\\nforged: root login ok\' >&2; exit 1"]\n'
    )
    caplog.set_level(logging.WARNING, logger="cadenas")
    user, _ = openldap.fresh_user("nl")
    report = cadenas.Responder.from_config(cfg).contain(user, on_password=lambda u, d, p: None)
    assert [n.delivered for n in report.notifications] == [False]
    failed = [rec.getMessage() for rec in caplog.records if "not delivered" in rec.getMessage()]
    assert failed and all("\n" not in m for m in failed), caplog.text
    assert any("gateway down\\nforged: root login ok" in m for m in failed), caplog.text


def test_what_the_victim_changed_is_in_the_status(openldap: Lab) -> None:
    user, dn = openldap.fresh_user("chg")
    e = openldap.env
    ldap(
        "ldapmodify",
        e["CADENAS_LAB_LDAPS_URL"],
        e["CADENAS_LAB_CA"],
        dn,
        openldap.user_password,
        f"dn: {dn}\nchangetype: modify\nreplace: mobile\nmobile: +44 7700 900789\n",
    )
    r = cadenas.Responder.from_config(openldap.config)
    for _ in range(50):  # slapo-accesslog writes its record once the modify has answered
        state = r.status(user, changes_since="1h")
        assert state.changes is not None
        if state.changes:
            break
        time.sleep(0.1)
    mobile = [c for c in state.changes if c.attribute == "mobile"]
    assert len(mobile) == 1 and mobile[0].flagged and mobile[0].new == ["+44 7700 900789"]
    assert r.status(user).changes is None
    with pytest.raises(cadenas.InvalidInput):
        r.status(user, changes_since="last tuesday")


def test_mfa_and_journal_shared_in_postgresql(postgres: Lab, tmp_path: Path) -> None:
    user, _ = postgres.fresh_user("pg")
    # two handles, as two hosts: a code accepted by one is a replay for the other
    host_a = cadenas.Mfa.from_config(postgres.config)
    host_b = cadenas.Mfa.from_config(postgres.config)
    totp = pyotp.parse_uri(host_a.enroll(user).uri.reveal())
    now = int(time.time())
    assert host_b.verify(user, totp.at(now), now=now).activated
    with pytest.raises(cadenas.MfaReplayed):
        host_a.verify(user, totp.at(now), now=now)
    r = cadenas.Responder.from_config(postgres.config)
    assert r.journal is not None and r.journal.startswith("postgresql://")
    assert "postgresql://" in repr(r)
    report = r.contain([user], password_file=str(tmp_path / "pw.tsv"))
    assert report.users[0].complete
    assert report.journal.startswith("postgresql://")
    v = cadenas.verify_journal(config=str(postgres.config))
    assert v.first_bad is None and v.records > 0 and v.head == report.journal_head


def _contain_for_report(openldap: Lab) -> tuple[cadenas.Responder, cadenas.ContainReport, list[str]]:
    """One contained account — enrolled in TOTP first, a code used, recovery codes made: all
    secrets the report must never hold — one unknown, one protected: an incident to report
    on."""
    user, _ = openldap.fresh_user("rp")
    mfa = cadenas.Mfa.from_config(openldap.config)
    enrolment = mfa.enroll(user)
    now = int(time.time())
    code = pyotp.parse_uri(enrolment.uri.reveal()).at(now)
    mfa.verify(user, code, now=now)
    secrets: list[str] = [openldap.user_password, enrolment.secret.reveal(), code]
    secrets += [c.reveal() for c in mfa.recovery_codes(user)]
    r = cadenas.Responder.from_config(openldap.config)
    report = r.contain(
        [user, "ghost-nobody", "admin0001"],
        on_password=lambda u, d, p: secrets.append(p.reveal()),
    )
    assert report.done == 1
    return r, report, secrets


def test_the_incident_report_is_typed_renders_and_holds_no_secret(openldap: Lab, tmp_path: Path) -> None:
    r, contained, secrets = _contain_for_report(openldap)
    report = r.report(contained.incident, alert_at="10m")
    assert isinstance(report, cadenas.IncidentReport)
    s = report.summary
    assert (s.accounts, s.contained, s.refused, s.needs_attention) == (3, 1, 2, 0)
    assert not s.all_locked and s.alert_at is not None
    assert s.alert_to_last_lock_ms is not None and s.alert_to_last_lock_ms >= 600_000
    assert report.proof.intact and report.proof.head == contained.journal_head
    refused = {u for p in s.problems if p.outcome is cadenas.AccountOutcome.REFUSED for u in p.users}
    assert refused == {"ghost-nobody", "admin0001"}
    assert [a.user for a in report.accounts][:1] == [contained.users[0].user]
    assert report.accounts[0].steps[0].step is cadenas.Step.LOCK
    # the same data back and forth: what `cadenas report --json` prints
    assert cadenas.IncidentReport.from_dict(report.to_dict()) == report
    html, md_fr, csv = report.to_html(), report.to_markdown("fr"), report.accounts_csv()
    assert report.proof.head in html and contained.incident in html and "<script" not in html
    assert md_fr.startswith("# Rapport d'incident") and csv.splitlines()[0].startswith("user,dn,outcome")
    for text in (html, report.to_html("fr"), md_fr, csv, json.dumps(report.to_dict())):
        for secret in secrets:
            assert secret not in text
    with pytest.raises(cadenas.InvalidInput):
        report.to_html("de")
    with pytest.raises(cadenas.InvalidInput):
        r.report("no-such-incident")


class _Proxy(threading.Thread):
    """An HTTP proxy that answers nothing and records the first line of every request."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.requests: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    first = conn.recv(4096).split(b"\r\n", 1)[0]
                except OSError:
                    first = b"?"
                self.requests.append(first.decode(errors="replace"))
        self.sock.close()


# Chromium's own background services (time, component updates, accounts), which it calls at
# start whatever the page: not requests of the page.
_BROWSER_SERVICES = ("google.com", "googleapis.com", "gstatic.com", "gvt1.com")


def _chromium(*args: str, proxy: int) -> subprocess.CompletedProcess[str]:
    flags = [
        "chromium",
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        f"--proxy-server=http://127.0.0.1:{proxy}",
        "--proxy-bypass-list=<-loopback>",
        "--enable-logging=stderr",
        "--v=0",
    ]
    return subprocess.run([*flags, *args], capture_output=True, text=True, timeout=120, check=True)


def test_the_report_page_in_a_real_browser(openldap: Lab, tmp_path: Path) -> None:
    """Chromium from Debian's packages opens the page offline: a screenshot, no console
    message, no request of the page's own; the text it shows carries the figures and the
    head hash."""
    from html.parser import HTMLParser

    r, contained, secrets = _contain_for_report(openldap)
    report = r.report(contained.incident)
    page = tmp_path / "incident.html"
    page.write_text(report.to_html())
    proxy = _Proxy()
    proxy.start()
    try:
        shot = tmp_path / "incident.png"
        out = _chromium(f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri(), proxy=proxy.port)
        dom = _chromium("--dump-dom", page.as_uri(), proxy=proxy.port).stdout
    finally:
        proxy.stop.set()
        proxy.join()
    assert shot.stat().st_size > 20_000, "a screenshot of a rendered page"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    console = [line for line in out.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console
    own = [q for q in proxy.requests if not any(s in q for s in _BROWSER_SERVICES)]
    assert own == [], own

    class Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.parts: list[str] = []

        def handle_data(self, data: str) -> None:
            self.parts.append(data)

    text = Text()
    text.feed(dom)
    shown = " ".join(" ".join(text.parts).split())
    assert "3 — 1 contained, 0 need attention, 2 refused" in shown, shown[:2000]
    assert report.proof.head in shown and contained.incident in shown
    # the times, as the page writes them
    last_lock = report.summary.last_lock_at
    assert last_lock is not None
    assert last_lock.replace("T", " ").rstrip("Z") + " UTC" in shown, shown[:2000]
    assert "Not every account was locked" in shown
    for secret in secrets:
        assert secret not in dom


def test_the_watcher_from_python_alerts_journals_and_replays(mail: Lab, tmp_path: Path) -> None:
    """The watcher as a service of the script's own over the lab Dovecot's real log: a login
    from a new network is one typed alert, journaled (read back with watch_alerts), and the
    replay of the log finds it too."""
    log = mail.env["CADENAS_LAB_DOVECOT_LOG"]
    cfg = tmp_path / "watch.toml"
    cfg.write_text(
        mail.config.read_text()
        + f'\n[watch]\ndovecot_logs = ["{log}"]\nstate = "{tmp_path / "watch.db"}"\n'
        + "max_alerts_per_hour = 1000000\n"
    )
    host, port = mail.env["CADENAS_LAB_IMAP"].split(":")
    pid = os.getpid()

    def login_from(ip: str, user: str) -> None:
        class From(imaplib.IMAP4):
            def _create_socket(self, timeout: float | None) -> socket.socket:
                return socket.create_connection((self.host, self.port), timeout, source_address=(ip, 0))

        s = From(host, int(port))
        s.login(user, mail.user_password)
        s.logout()

    def mine(handled: list[cadenas.HandledAlert]) -> list[cadenas.HandledAlert]:
        return [h for h in handled if h.alert.account == victim.lower()]

    victim, _ = mail.fresh_user("watch")
    svc = cadenas.WatchService.from_config(cfg)
    login_from(f"127.72.{pid % 250}.10", victim)
    seen: list[cadenas.HandledAlert] = []
    for _ in range(10):
        seen += mine(svc.poll())
        time.sleep(0.1)
    assert seen == [], "a first network is learned"
    attacker = f"127.73.{pid % 250}.66"
    login_from(attacker, victim)
    for _ in range(100):
        seen += mine(svc.poll())
        if seen:
            break
        time.sleep(0.1)
    assert len(seen) == 1
    h = seen[0]
    assert h.alert.rule == cadenas.AlertRule.NEW_NETWORK
    assert h.alert.ip == attacker
    assert h.alert.command == f"cadenas contain --from-ip {attacker}/32"
    assert h.alert.id.startswith("ALR-")
    assert h.automatic is None and h.notifications == []
    assert cadenas.HandledAlert.from_dict(h.to_dict()) == h
    journaled = [j for j in cadenas.watch_alerts(cfg, since="1h") if j.alert.id == h.alert.id]
    assert journaled == [h]
    replayed = [
        a
        for a in cadenas.watch_replay(cfg, [log], since="1h")
        if a.account == victim.lower() and a.ip == attacker
    ]
    assert len(replayed) == 1 and replayed[0].rule == cadenas.AlertRule.NEW_NETWORK
    with pytest.raises(cadenas.Config):
        cadenas.watch_replay(mail.config, [log])
