/*
 * The C API's own tests: every error path of the boundary, the shared TOTP vectors, MFA over
 * a scratch store, and authenticate / status / plan / contain / cancel / resume / release /
 * journal verify against the real lab directory. Run by ffi/tests/run-c-tests.sh, under
 * valgrind, built against both the shared and the static library.
 *
 *   test_api RFC6238_JSON WORKDIR CONFIG USER_PASSWORD USER1 USER2 USER3
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

#include <jansson.h>

#include <cadenas.h>

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                                   \
  do {                                                                                \
    checks++;                                                                         \
    if (!(cond)) {                                                                    \
      failures++;                                                                     \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);        \
    }                                                                                 \
  } while (0)

#define CHECK_RC(call, want)                                                          \
  do {                                                                                \
    cadenas_result rc_ = (call);                                                      \
    checks++;                                                                         \
    if (rc_ != (want)) {                                                              \
      char m_[512];                                                                   \
      size_t n_ = 0;                                                                  \
      if (cadenas_last_error_message(m_, sizeof m_, &n_) != CADENAS_RESULT_OK) {      \
        m_[0] = '\0';                                                                 \
      }                                                                               \
      failures++;                                                                     \
      fprintf(stderr, "%s:%d: %s gave %u, want %u (%s): %s\n", __FILE__, __LINE__,    \
              #call, (unsigned)rc_, (unsigned)(want), #want, m_);                     \
    }                                                                                 \
  } while (0)

#define OK(call) CHECK_RC(call, CADENAS_RESULT_OK)

static const char *arg_workdir;

static char *path_in_work(const char *name) {
  static char buf[4][1024];
  static int i = 0;
  i = (i + 1) % 4;
  snprintf(buf[i], sizeof buf[i], "%s/%s", arg_workdir, name);
  return buf[i];
}

/* RFC 4648 base32 without padding, for the enrolment's secret. */
static size_t base32_decode(const char *in, uint8_t *out, size_t cap) {
  size_t n = 0;
  unsigned buffer = 0;
  int bits = 0;
  for (; *in; in++) {
    int v;
    if (*in >= 'A' && *in <= 'Z') {
      v = *in - 'A';
    } else if (*in >= '2' && *in <= '7') {
      v = *in - '2' + 26;
    } else {
      return 0;
    }
    buffer = (buffer << 5) | (unsigned)v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      if (n == cap) {
        return 0;
      }
      out[n++] = (uint8_t)(buffer >> bits);
    }
  }
  return n;
}

static void test_boundary(void) {
  CHECK(cadenas_version() != NULL && strlen(cadenas_version()) > 0);

  char buf[256];
  size_t n = 0;
  OK(cadenas_result_message(CADENAS_RESULT_MFA_REPLAYED, buf, sizeof buf, &n));
  CHECK(n == strlen(buf) && strstr(buf, "already used") != NULL);
  OK(cadenas_result_message(123456, buf, sizeof buf, &n));
  CHECK(strcmp(buf, "unknown result") == 0);
  /* size query, then a buffer one byte short: nothing written */
  n = 0;
  CHECK_RC(cadenas_result_message(CADENAS_RESULT_OK, NULL, 0, &n), CADENAS_RESULT_BUFFER_TOO_SMALL);
  CHECK(n == strlen("Success."));
  memset(buf, 'z', sizeof buf);
  CHECK_RC(cadenas_result_message(CADENAS_RESULT_OK, buf, n, &n), CADENAS_RESULT_BUFFER_TOO_SMALL);
  CHECK(buf[0] == 'z');
  CHECK_RC(cadenas_result_message(CADENAS_RESULT_OK, buf, sizeof buf, NULL), CADENAS_RESULT_NULL_POINTER);

  /* config: NULLs, bad UTF-8, missing file, bad TOML; the output is left alone on failure */
  cadenas_config *cfg = (cadenas_config *)0x1;
  CHECK_RC(cadenas_config_from_file(NULL, &cfg), CADENAS_RESULT_NULL_POINTER);
  CHECK_RC(cadenas_config_from_file("/nonexistent/cadenas.toml", NULL), CADENAS_RESULT_NULL_POINTER);
  CHECK_RC(cadenas_config_from_file("/tmp/\xff\xfe", &cfg), CADENAS_RESULT_INVALID_UTF8);
  CHECK_RC(cadenas_config_from_file("/nonexistent/cadenas.toml", &cfg), CADENAS_RESULT_CONFIG);
  CHECK(cfg == (cadenas_config *)0x1);
  OK(cadenas_last_error_message(buf, sizeof buf, &n));
  CHECK(strstr(buf, "/nonexistent/cadenas.toml") != NULL);
  CHECK_RC(cadenas_config_from_toml("[directory\nurl=", NULL, &cfg), CADENAS_RESULT_CONFIG);
  CHECK(cfg == (cadenas_config *)0x1);
  /* the last error survives a too-small buffer asking about it */
  CHECK_RC(cadenas_last_error_message(buf, 2, &n), CADENAS_RESULT_BUFFER_TOO_SMALL);
  CHECK(n > 2);
  OK(cadenas_last_error_message(buf, sizeof buf, &n));
  CHECK(strlen(buf) == n && n > 2);

  /* NULL handles everywhere, and frees of NULL */
  cadenas_report *report = NULL;
  CHECK_RC(cadenas_responder_status(NULL, "x", &report), CADENAS_RESULT_NULL_POINTER);
  CHECK_RC(cadenas_mfa_verify(NULL, "x", "123456"), CADENAS_RESULT_NULL_POINTER);
  CHECK_RC(cadenas_report_json(NULL, buf, sizeof buf, &n), CADENAS_RESULT_NULL_POINTER);
  CHECK(cadenas_report_user_count(NULL) == 0 && cadenas_report_kind(NULL) == 0);
  cadenas_config_free(NULL);
  cadenas_responder_free(NULL);
  cadenas_mfa_free(NULL);
  cadenas_report_free(NULL);
  cadenas_authenticator_free(NULL);
  cadenas_contain_options_free(NULL);
  cadenas_enrolment_free(NULL);
  cadenas_secret_list_free(NULL);

  /* options: a freed handle is refused, a double free is harmless, a handle of another type
   * is refused */
  cadenas_contain_options *opts = NULL;
  OK(cadenas_contain_options_new(&opts));
  CHECK_RC(cadenas_contain_options_set_concurrency(opts, 0), CADENAS_RESULT_INVALID_INPUT);
  OK(cadenas_contain_options_set_concurrency(opts, 4));
  CHECK_RC(cadenas_contain_options_set_reason(opts, "\xc3\x28"), CADENAS_RESULT_INVALID_UTF8);
  CHECK_RC(cadenas_responder_status((const cadenas_responder *)opts, "x", &report),
           CADENAS_RESULT_INVALID_HANDLE);
  cadenas_responder_free((cadenas_responder *)opts); /* wrong type: ignored */
  OK(cadenas_contain_options_set_allow_protected(opts, false));
  cadenas_contain_options_free(opts);
  CHECK_RC(cadenas_contain_options_set_allow_protected(opts, true), CADENAS_RESULT_INVALID_HANDLE);
  cadenas_contain_options_free(opts);
  CHECK(report == NULL);
}

static void test_totp_vectors(const char *fixture) {
  json_error_t err;
  json_t *root = json_load_file(fixture, 0, &err);
  CHECK(root != NULL);
  if (root == NULL) {
    fprintf(stderr, "%s: %s\n", fixture, err.text);
    return;
  }
  unsigned digits = (unsigned)json_integer_value(json_object_get(root, "digits"));
  uint64_t period = (uint64_t)json_integer_value(json_object_get(root, "period"));
  json_t *secrets = json_object_get(root, "secrets_ascii");
  const char *names[] = {"sha1", "sha256", "sha512"};
  const uint32_t algs[] = {CADENAS_TOTP_ALGORITHM_SHA1, CADENAS_TOTP_ALGORITHM_SHA256,
                           CADENAS_TOTP_ALGORITHM_SHA512};
  size_t i;
  json_t *v;
  int seen = 0;
  json_array_foreach(json_object_get(root, "vectors"), i, v) {
    uint64_t t = (uint64_t)json_integer_value(json_object_get(v, "time"));
    for (int a = 0; a < 3; a++) {
      const char *secret = json_string_value(json_object_get(secrets, names[a]));
      const char *want = json_string_value(json_object_get(v, names[a]));
      char code[16];
      size_t n = 0;
      OK(cadenas_totp_code((const uint8_t *)secret, strlen(secret), t, digits, period, algs[a], code,
                           sizeof code, &n));
      CHECK(want != NULL && strcmp(code, want) == 0);
      seen++;
    }
  }
  CHECK(seen >= 18);
  char code[16];
  size_t n = 0;
  CHECK_RC(cadenas_totp_code((const uint8_t *)"k", 1, 0, 6, 30, 99, code, sizeof code, &n),
           CADENAS_RESULT_INVALID_INPUT);
  CHECK_RC(cadenas_totp_code((const uint8_t *)"k", 1, 0, 5, 30, CADENAS_TOTP_ALGORITHM_SHA1, code,
                             sizeof code, &n),
           CADENAS_RESULT_INVALID_INPUT);
  CHECK_RC(cadenas_totp_code((const uint8_t *)"k", 1, 0, 6, 0, CADENAS_TOTP_ALGORITHM_SHA1, code,
                             sizeof code, &n),
           CADENAS_RESULT_INVALID_INPUT);
  /* a NULL buffer with a length is a NULL pointer; NULL and 0 ask for the length */
  CHECK_RC(cadenas_totp_code((const uint8_t *)"k", 1, 0, 6, 30, CADENAS_TOTP_ALGORITHM_SHA1, NULL, 16, &n),
           CADENAS_RESULT_NULL_POINTER);
  n = 0;
  CHECK_RC(cadenas_totp_code((const uint8_t *)"k", 1, 0, 6, 30, CADENAS_TOTP_ALGORITHM_SHA1, NULL, 0, &n),
           CADENAS_RESULT_BUFFER_TOO_SMALL);
  CHECK(n == 6);
  CHECK_RC(cadenas_totp_code(NULL, 1, 0, 6, 30, CADENAS_TOTP_ALGORITHM_SHA1, code, sizeof code, &n),
           CADENAS_RESULT_NULL_POINTER);

  /* the in-memory check: the step of the code, within one step either side, nothing beyond */
  const uint8_t key[] = "12345678901234567890";
  const uint64_t t = 1111111109; /* RFC 6238 appendix B: 07081804 (8 digits, SHA-1) */
  uint64_t step = 0;
  OK(cadenas_totp_verify(key, 20, "07081804", t, 8, 30, CADENAS_TOTP_ALGORITHM_SHA1, &step));
  CHECK(step == t / 30);
  OK(cadenas_totp_verify(key, 20, "07081804", t + 30, 8, 30, CADENAS_TOTP_ALGORITHM_SHA1, &step));
  CHECK(step == t / 30);
  step = 0;
  CHECK_RC(cadenas_totp_verify(key, 20, "07081804", t + 90, 8, 30, CADENAS_TOTP_ALGORITHM_SHA1, &step),
           CADENAS_RESULT_MFA_BAD_CODE);
  CHECK(step == 0);
  CHECK_RC(cadenas_totp_verify(key, 20, "0708180x", t, 8, 30, CADENAS_TOTP_ALGORITHM_SHA1, &step),
           CADENAS_RESULT_MFA_BAD_CODE);
  CHECK_RC(cadenas_totp_verify(key, 20, "081804", t, 8, 30, CADENAS_TOTP_ALGORITHM_SHA1, &step),
           CADENAS_RESULT_MFA_BAD_CODE);
  CHECK_RC(cadenas_totp_verify(key, 20, NULL, t, 8, 30, CADENAS_TOTP_ALGORITHM_SHA1, &step),
           CADENAS_RESULT_NULL_POINTER);
  CHECK_RC(cadenas_totp_verify(key, 20, "07081804", t, 8, 30, CADENAS_TOTP_ALGORITHM_SHA1, NULL),
           CADENAS_RESULT_NULL_POINTER);
  CHECK_RC(cadenas_totp_verify(key, 20, "07081804", t, 8, 30, 7, &step), CADENAS_RESULT_INVALID_INPUT);
  json_decref(root);
}

static void code_now(const char *secret_b32, int64_t offset, char *code, size_t cap) {
  uint8_t key[64];
  size_t klen = base32_decode(secret_b32, key, sizeof key);
  CHECK(klen == 20);
  size_t n = 0;
  OK(cadenas_totp_code(key, klen, (uint64_t)((int64_t)time(NULL) + offset), 6, 30,
                       CADENAS_TOTP_ALGORITHM_SHA1, code, cap, &n));
  explicit_bzero(key, sizeof key);
}

static void test_mfa(void) {
  char toml[2048];
  snprintf(toml, sizeof toml,
           "[directory]\nurl = \"ldaps://127.0.0.1:1\"\nbind_dn = \"cn=x\"\n"
           "bind_password_file = \"/dev/null\"\nbase_dns = [\"dc=example,dc=test\"]\n"
           "[mfa]\ndatabase = \"%s\"\nkey_file = \"%s\"\nissuer = \"C tests\"\n",
           path_in_work("mfa.db"), path_in_work("mfa.key"));
  cadenas_config *cfg = NULL;
  OK(cadenas_config_from_toml(toml, NULL, &cfg));
  cadenas_mfa *mfa = NULL;
  CHECK_RC(cadenas_mfa_open(cfg, false, &mfa), CADENAS_RESULT_MFA_STORE); /* not created on a login path */
  CHECK(mfa == NULL);
  OK(cadenas_mfa_open(cfg, true, &mfa));

  cadenas_enrolment *e = NULL;
  CHECK_RC(cadenas_mfa_enroll(mfa, "bad\nname", &e), CADENAS_RESULT_INVALID_USER_NAME);
  OK(cadenas_mfa_enroll(mfa, "alice", &e));
  size_t n = 0;
  CHECK_RC(cadenas_enrolment_uri(e, NULL, 0, &n), CADENAS_RESULT_BUFFER_TOO_SMALL);
  char *uri = malloc(n + 1);
  OK(cadenas_enrolment_uri(e, uri, n + 1, &n));
  CHECK(strncmp(uri, "otpauth://totp/", 15) == 0 && strlen(uri) == n);
  char secret[64];
  OK(cadenas_enrolment_secret(e, secret, sizeof secret, &n));
  CHECK(n == 32 && strstr(uri, secret) != NULL);
  explicit_bzero(uri, strlen(uri));
  free(uri);
  cadenas_enrolment_free(e);
  CHECK_RC(cadenas_enrolment_secret(e, secret, sizeof secret, &n), CADENAS_RESULT_INVALID_HANDLE);

  cadenas_enrolment_state st = CADENAS_ENROLMENT_STATE_NONE;
  OK(cadenas_mfa_enrolment_state(mfa, "alice", &st));
  CHECK(st == CADENAS_ENROLMENT_STATE_PENDING);
  char code[16];
  code_now(secret, 0, code, sizeof code);
  OK(cadenas_mfa_verify(mfa, "alice", code));
  CHECK_RC(cadenas_mfa_verify(mfa, "alice", code), CADENAS_RESULT_MFA_REPLAYED);
  code_now(secret, -30, code, sizeof code); /* an earlier step: a replay too */
  CHECK_RC(cadenas_mfa_verify(mfa, "alice", code), CADENAS_RESULT_MFA_REPLAYED);
  CHECK_RC(cadenas_mfa_verify(mfa, "alice", "12345x"), CADENAS_RESULT_MFA_BAD_CODE);
  CHECK_RC(cadenas_mfa_verify(mfa, "nobody", "123456"), CADENAS_RESULT_MFA_NOT_ENROLLED);
  OK(cadenas_mfa_enrolment_state(mfa, "alice", &st));
  CHECK(st == CADENAS_ENROLMENT_STATE_ACTIVE);

  cadenas_secret_list *codes = NULL;
  OK(cadenas_mfa_recovery_codes(mfa, "alice", &codes));
  size_t count = cadenas_secret_list_len(codes);
  CHECK(count >= 8);
  char rc1[64], rc2[64];
  OK(cadenas_secret_list_get(codes, 0, rc1, sizeof rc1, &n));
  OK(cadenas_secret_list_get(codes, count - 1, rc2, sizeof rc2, &n));
  CHECK(strcmp(rc1, rc2) != 0);
  CHECK_RC(cadenas_secret_list_get(codes, count, rc2, sizeof rc2, &n), CADENAS_RESULT_OUT_OF_RANGE);
  cadenas_secret_list_free(codes);
  CHECK(cadenas_secret_list_len(codes) == 0);
  CHECK_RC(cadenas_secret_list_get(codes, 0, rc2, sizeof rc2, &n), CADENAS_RESULT_INVALID_HANDLE);
  cadenas_secret_list_free(codes);
  OK(cadenas_mfa_use_recovery_code(mfa, "alice", rc1));
  CHECK_RC(cadenas_mfa_use_recovery_code(mfa, "alice", rc1), CADENAS_RESULT_MFA_RECOVERY_CODE);
  OK(cadenas_mfa_use_recovery_code(mfa, "alice", rc2));
  explicit_bzero(rc1, sizeof rc1);
  explicit_bzero(rc2, sizeof rc2);

  /* throttling: wrong codes until refused outright */
  cadenas_result last = CADENAS_RESULT_OK;
  for (int i = 0; i < 20 && last != CADENAS_RESULT_MFA_THROTTLED; i++) {
    last = cadenas_mfa_verify(mfa, "alice", "000000");
  }
  CHECK(last == CADENAS_RESULT_MFA_THROTTLED);

  bool had = false;
  OK(cadenas_mfa_reset(mfa, "alice", &had));
  CHECK(had);
  OK(cadenas_mfa_reset(mfa, "alice", &had));
  CHECK(!had);
  OK(cadenas_mfa_enrolment_state(mfa, "alice", &st));
  CHECK(st == CADENAS_ENROLMENT_STATE_NONE);
  cadenas_mfa_free(mfa);
  CHECK_RC(cadenas_mfa_verify(mfa, "alice", "123456"), CADENAS_RESULT_INVALID_HANDLE);
  cadenas_mfa_free(mfa);
  cadenas_config_free(cfg);
}

/* --- against the lab directory ------------------------------------------------------- */

struct handover_seen {
  int calls;
  char password[128];
  const cadenas_handover *kept;
};

static int on_password(void *userdata, const char *user, const char *dn, const cadenas_handover *h) {
  struct handover_seen *seen = userdata;
  size_t n = 0;
  seen->calls++;
  seen->kept = h;
  CHECK(user != NULL && dn != NULL && strstr(dn, user) != NULL);
  CHECK_RC(cadenas_handover_password(h, NULL, 0, &n), CADENAS_RESULT_BUFFER_TOO_SMALL);
  CHECK(n >= 16 && n < sizeof seen->password);
  return cadenas_handover_password(h, seen->password, sizeof seen->password, &n) == CADENAS_RESULT_OK ? 0 : 1;
}

struct progress_seen {
  int calls;
  int stop_after;
  const cadenas_responder *responder;
  cadenas_result reentry;
};

static int on_progress(void *userdata, const char *user, size_t finished, size_t total, size_t failed) {
  struct progress_seen *p = userdata;
  p->calls++;
  CHECK(user != NULL && finished >= 1 && finished <= total);
  (void)failed;
  cadenas_report *r = NULL;
  p->reentry = cadenas_responder_status(p->responder, user, &r); /* refused, not a deadlock */
  cadenas_report_free(r);
  return p->stop_after > 0 && p->calls >= p->stop_after;
}

static char *report_json(const cadenas_report *r) {
  size_t n = 0;
  CHECK_RC(cadenas_report_json(r, NULL, 0, &n), CADENAS_RESULT_BUFFER_TOO_SMALL);
  char *json = calloc(1, n + 1);
  OK(cadenas_report_json(r, json, n + 1, &n));
  return json;
}

static void test_lab(const char *config_path, const char *user_pw, const char *u1, const char *u2,
                     const char *u3) {
  cadenas_config *cfg = NULL;
  OK(cadenas_config_from_file(config_path, &cfg));
  if (cfg == NULL) {
    return;
  }
  char buf[4096];
  size_t n = 0;

  /* authenticate: the call a PAM module makes (over an MFA store that exists: an enrolment
   * tool creates it) */
  cadenas_mfa *store = NULL;
  OK(cadenas_mfa_open(cfg, true, &store));
  cadenas_mfa_free(store);
  cadenas_authenticator *auth = NULL;
  OK(cadenas_authenticator_new(cfg, &auth));
  cadenas_auth_outcome outcome = CADENAS_AUTH_OUTCOME_OK;
  OK(cadenas_authenticate(auth, u1, user_pw, NULL, &outcome));
  CHECK(outcome == CADENAS_AUTH_OUTCOME_OK);
  OK(cadenas_authenticate(auth, u1, "wrong-password", NULL, &outcome));
  CHECK(outcome == CADENAS_AUTH_OUTCOME_BAD_PASSWORD);
  outcome = CADENAS_AUTH_OUTCOME_OK;
  OK(cadenas_authenticate(auth, "no-such-user-here", user_pw, NULL, &outcome));
  CHECK(outcome == CADENAS_AUTH_OUTCOME_BAD_PASSWORD);
  outcome = CADENAS_AUTH_OUTCOME_OK;
  CHECK_RC(cadenas_authenticate(auth, "*)(uid=*", user_pw, NULL, &outcome), CADENAS_RESULT_INVALID_USER_NAME);
  CHECK(outcome == CADENAS_AUTH_OUTCOME_OK); /* not written on failure */
  CHECK_RC(cadenas_authenticate(auth, u1, NULL, NULL, &outcome), CADENAS_RESULT_NULL_POINTER);
  CHECK_RC(cadenas_authenticate(auth, u1, user_pw, NULL, NULL), CADENAS_RESULT_NULL_POINTER);

  cadenas_responder *r = NULL;
  OK(cadenas_responder_new(cfg, path_in_work("journal.jsonl"), &r));
  if (r == NULL) {
    cadenas_authenticator_free(auth);
    cadenas_config_free(cfg);
    return;
  }

  /* status */
  cadenas_report *rep = NULL;
  OK(cadenas_responder_status(r, u1, &rep));
  CHECK(cadenas_report_kind(rep) == CADENAS_OPERATION_STATUS);
  char *json = report_json(rep);
  CHECK(strstr(json, "\"unlocked\"") != NULL);
  free(json);
  cadenas_report_free(rep);
  rep = NULL;
  CHECK_RC(cadenas_responder_status(r, "no-such-user-here", &rep), CADENAS_RESULT_USER_NOT_FOUND);
  CHECK_RC(cadenas_responder_status(r, "a,b=c", &rep), CADENAS_RESULT_INVALID_USER_NAME);
  CHECK(rep == NULL);

  /* plan: one known user, one unknown; nothing changes */
  const char *plan_users[] = {u1, "no-such-user-here"};
  OK(cadenas_responder_plan(r, plan_users, 2, false, &rep));
  CHECK(cadenas_report_kind(rep) == CADENAS_OPERATION_PLAN && cadenas_report_user_count(rep) == 2);
  cadenas_user_status us = CADENAS_USER_STATUS_DONE;
  cadenas_result why = CADENAS_RESULT_OK;
  OK(cadenas_report_user_status(rep, 1, &us, &why));
  CHECK(us == CADENAS_USER_STATUS_REFUSED && why == CADENAS_RESULT_USER_NOT_FOUND);
  CHECK_RC(cadenas_report_user_status(rep, 2, &us, &why), CADENAS_RESULT_OUT_OF_RANGE);
  OK(cadenas_report_user_name(rep, 0, buf, sizeof buf, &n));
  CHECK(strcmp(buf, u1) == 0);
  cadenas_report_free(rep);
  CHECK_RC(cadenas_report_user_name(rep, 0, buf, sizeof buf, &n), CADENAS_RESULT_INVALID_HANDLE);
  rep = NULL;
  CHECK_RC(cadenas_responder_plan(r, NULL, 1, false, &rep), CADENAS_RESULT_NULL_POINTER);

  /* contain u1, the new password handed to a callback; the progress callback calls back in */
  cadenas_contain_options *opts = NULL;
  OK(cadenas_contain_options_new(&opts));
  struct handover_seen seen = {0};
  struct progress_seen prog = {0, 0, r, CADENAS_RESULT_OK};
  OK(cadenas_contain_options_set_password_callback(opts, on_password, &seen));
  OK(cadenas_contain_options_set_progress_callback(opts, on_progress, &prog));
  OK(cadenas_contain_options_set_incident(opts, "c-test-1"));
  OK(cadenas_contain_options_set_reason(opts, "C API test"));
  OK(cadenas_responder_contain(r, u1, opts, &rep));
  CHECK(cadenas_report_kind(rep) == CADENAS_OPERATION_CONTAIN);
  CHECK(cadenas_report_done(rep) == 1 && cadenas_report_failed(rep) == 0);
  OK(cadenas_report_user_status(rep, 0, &us, &why));
  CHECK(us == CADENAS_USER_STATUS_DONE && why == CADENAS_RESULT_OK);
  OK(cadenas_report_incident(rep, buf, sizeof buf, &n));
  CHECK(strcmp(buf, "c-test-1") == 0);
  json = report_json(rep);
  CHECK(strstr(json, seen.password) == NULL); /* the report never holds the password */
  free(json);
  cadenas_report_free(rep);
  rep = NULL;
  CHECK(seen.calls == 1 && prog.calls == 1);
  CHECK(prog.reentry == CADENAS_RESULT_INVALID_CONTEXT);
  CHECK_RC(cadenas_handover_password(seen.kept, buf, sizeof buf, &n), CADENAS_RESULT_INVALID_HANDLE);

  /* the old password is dead, the handed-over one is the live one (once released) */
  OK(cadenas_authenticate(auth, u1, user_pw, NULL, &outcome));
  CHECK(outcome != CADENAS_AUTH_OUTCOME_OK);
  OK(cadenas_authenticate(auth, u1, seen.password, NULL, &outcome));
  CHECK(outcome == CADENAS_AUTH_OUTCOME_LOCKED);
  CHECK_RC(cadenas_responder_release(r, u1, NULL, &rep), CADENAS_RESULT_RELEASE_REFUSED); /* no MFA yet */
  OK(cadenas_responder_release(r, u1, "C API test: released without MFA", &rep));
  CHECK(cadenas_report_kind(rep) == CADENAS_OPERATION_RELEASE);
  cadenas_report_free(rep);
  rep = NULL;
  OK(cadenas_authenticate(auth, u1, seen.password, NULL, &outcome));
  CHECK(outcome == CADENAS_AUTH_OUTCOME_MUST_CHANGE);
  explicit_bzero(seen.password, sizeof seen.password);

  /* u2 and u3 at once, passwords to a file, stopped by the progress callback after one user;
   * resume finishes the other */
  cadenas_contain_options *opts2 = NULL;
  OK(cadenas_contain_options_new(&opts2));
  OK(cadenas_contain_options_set_password_file(opts2, path_in_work("passwords.tsv")));
  OK(cadenas_contain_options_set_concurrency(opts2, 1));
  OK(cadenas_contain_options_set_incident(opts2, "c-test-2"));
  struct progress_seen stop = {0, 1, r, CADENAS_RESULT_OK};
  OK(cadenas_contain_options_set_progress_callback(opts2, on_progress, &stop));
  const char *both[] = {u2, u3};
  OK(cadenas_responder_contain_list(r, both, 2, opts2, &rep));
  CHECK(cadenas_report_user_count(rep) == 2 && cadenas_report_done(rep) == 1);
  OK(cadenas_report_user_status(rep, 1, &us, &why));
  CHECK(us == CADENAS_USER_STATUS_INTERRUPTED);
  cadenas_report_free(rep);
  rep = NULL;
  struct stat sb;
  CHECK(stat(path_in_work("passwords.tsv"), &sb) == 0 && (sb.st_mode & 0777) == 0600);
  /* the file exists now: a second run with the same file is refused before it starts */
  CHECK_RC(cadenas_responder_contain_list(r, both, 2, opts2, &rep), CADENAS_RESULT_IO);
  OK(cadenas_contain_options_set_password_file(opts2, path_in_work("passwords-resume.tsv")));
  OK(cadenas_contain_options_set_progress_callback(opts2, NULL, NULL));
  OK(cadenas_responder_resume(r, "c-test-2", opts2, &rep));
  CHECK(cadenas_report_done(rep) == 2 && cadenas_report_failed(rep) == 0);
  cadenas_report_free(rep);
  rep = NULL;
  /* resuming a finished incident is idempotent: every step is from the earlier run */
  OK(cadenas_contain_options_set_password_file(opts2, path_in_work("passwords-none.tsv")));
  OK(cadenas_responder_resume(r, "c-test-2", opts2, &rep));
  CHECK(cadenas_report_done(rep) == 2);
  CHECK(stat(path_in_work("passwords-none.tsv"), &sb) != 0); /* no new password set */
  char head[128];
  OK(cadenas_report_journal_head(rep, head, sizeof head, &n));
  CHECK(n == 64);
  cadenas_report_free(rep);
  rep = NULL;
  CHECK_RC(cadenas_responder_resume(r, "no-such-incident", opts2, &rep), CADENAS_RESULT_NOTHING_TO_RESUME);

  /* journal verify: the head matches; a tampered copy is refused */
  OK(cadenas_journal_verify(cfg, path_in_work("journal.jsonl"), &rep));
  CHECK(cadenas_report_kind(rep) == CADENAS_OPERATION_JOURNAL_VERIFY);
  OK(cadenas_report_journal_head(rep, buf, sizeof buf, &n));
  CHECK(strcmp(buf, head) == 0);
  cadenas_report_free(rep);
  rep = NULL;
  FILE *in = fopen(path_in_work("journal.jsonl"), "r");
  FILE *out = fopen(path_in_work("tampered.jsonl"), "w");
  CHECK(in != NULL && out != NULL);
  if (in != NULL && out != NULL) {
    int c, line = 0, changed = 0;
    while ((c = fgetc(in)) != EOF) {
      if (c == '\n') {
        line++;
      }
      if (line == 1 && !changed && c == '2') { /* a digit of the second record */
        c = '3';
        changed = 1;
      }
      fputc(c, out);
    }
    CHECK(changed);
  }
  if (in != NULL) {
    fclose(in);
  }
  if (out != NULL) {
    fclose(out);
  }
  CHECK_RC(cadenas_journal_verify(NULL, path_in_work("tampered.jsonl"), &rep), CADENAS_RESULT_JOURNAL_TAMPERED);
  CHECK(rep == NULL);
  CHECK_RC(cadenas_journal_verify(NULL, path_in_work("missing.jsonl"), &rep), CADENAS_RESULT_JOURNAL);
  /* NULL path: the journal the config names (here a file no run of this test wrote yet) */
  CHECK_RC(cadenas_journal_verify(cfg, NULL, &rep), CADENAS_RESULT_JOURNAL);
  CHECK(rep == NULL);
  CHECK_RC(cadenas_journal_verify(NULL, NULL, &rep), CADENAS_RESULT_INVALID_INPUT);

  /* the incident record: the same JSON as `cadenas report --json`, from the journal alone */
  OK(cadenas_incident_report(cfg, path_in_work("journal.jsonl"), "c-test-2", &rep));
  CHECK(cadenas_report_kind(rep) == CADENAS_OPERATION_INCIDENT_REPORT);
  CHECK(cadenas_report_done(rep) == 2 && cadenas_report_failed(rep) == 0);
  OK(cadenas_report_journal_head(rep, buf, sizeof buf, &n));
  CHECK(strcmp(buf, head) == 0);
  OK(cadenas_report_incident(rep, buf, sizeof buf, &n));
  CHECK(strcmp(buf, "c-test-2") == 0);
  char *record = report_json(rep);
  CHECK(record != NULL);
  if (record != NULL) {
    CHECK(strstr(record, "\"summary\"") != NULL && strstr(record, "\"proof\"") != NULL);
    CHECK(strstr(record, "\"accounts\": 2") != NULL && strstr(record, "\"all_locked\": true") != NULL);
    CHECK(strstr(record, user_pw) == NULL);
    free(record);
  }
  cadenas_report_free(rep);
  rep = NULL;
  /* a tampered journal still gives its report, and says so */
  CHECK_RC(cadenas_incident_report(NULL, path_in_work("tampered.jsonl"), "c-test-2", &rep),
           CADENAS_RESULT_JOURNAL_TAMPERED);
  CHECK(rep != NULL && cadenas_report_kind(rep) == CADENAS_OPERATION_INCIDENT_REPORT);
  cadenas_report_free(rep);
  rep = NULL;
  CHECK_RC(cadenas_incident_report(cfg, path_in_work("journal.jsonl"), "no-such-incident", &rep),
           CADENAS_RESULT_INVALID_INPUT);
  CHECK(rep == NULL);
  CHECK_RC(cadenas_incident_report(cfg, path_in_work("journal.jsonl"), NULL, &rep), CADENAS_RESULT_NULL_POINTER);

  cadenas_contain_options_free(opts);
  cadenas_contain_options_free(opts2);
  cadenas_responder_free(r);
  CHECK_RC(cadenas_responder_status(r, u1, &rep), CADENAS_RESULT_INVALID_HANDLE);
  cadenas_authenticator_free(auth);
  cadenas_config_free(cfg);
}

/* Handles made before fork() refuse to work in the child (tokio and SQLite do not survive a
 * fork); handles made in the child work; the parent's are untouched. */
static void test_fork(const char *config_path) {
  cadenas_config *cfg = NULL;
  OK(cadenas_config_from_file(config_path, &cfg));
  cadenas_mfa *mfa = NULL;
  OK(cadenas_mfa_open(cfg, true, &mfa));
  cadenas_authenticator *auth = NULL;
  OK(cadenas_authenticator_new(cfg, &auth));
  cadenas_responder *resp = NULL;
  OK(cadenas_responder_new_without_journal(cfg, &resp));
  cadenas_report *rep = NULL;
  CHECK_RC(cadenas_responder_status(resp, "no-such-user-here", &rep), CADENAS_RESULT_USER_NOT_FOUND);
  fflush(NULL);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    int bad = 0;
    cadenas_enrolment_state st = CADENAS_ENROLMENT_STATE_NONE;
    cadenas_auth_outcome o = CADENAS_AUTH_OUTCOME_OK;
    if (cadenas_mfa_enrolment_state(mfa, "nobody", &st) != CADENAS_RESULT_INVALID_CONTEXT) {
      bad |= 1;
    }
    if (cadenas_authenticate(auth, "nobody", "x", NULL, &o) != CADENAS_RESULT_INVALID_CONTEXT) {
      bad |= 2;
    }
    cadenas_mfa *fresh = NULL;
    if (cadenas_mfa_open(cfg, false, &fresh) != CADENAS_RESULT_OK ||
        cadenas_mfa_enrolment_state(fresh, "nobody", &st) != CADENAS_RESULT_OK) {
      bad |= 4;
    }
    cadenas_mfa_free(fresh);
    /* a fresh authenticator works in the child; freeing the pre-fork ones here must leave
     * the parent's connections alone */
    cadenas_authenticator *fresh_auth = NULL;
    if (cadenas_authenticator_new(cfg, &fresh_auth) != CADENAS_RESULT_OK ||
        cadenas_authenticate(fresh_auth, "no-such-user-here", "x", NULL, &o) != CADENAS_RESULT_OK) {
      bad |= 8;
    }
    cadenas_authenticator_free(fresh_auth);
    if (cadenas_responder_status(resp, "nobody", &rep) != CADENAS_RESULT_INVALID_CONTEXT) {
      bad |= 16;
    }
    cadenas_responder_free(resp);
    cadenas_authenticator_free(auth);
    cadenas_mfa_free(mfa);
    cadenas_config_free(cfg);
    _exit(bad);
  }
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
    fprintf(stderr, "fork child: failures %d\n", WEXITSTATUS(status));
  }
  cadenas_enrolment_state st = CADENAS_ENROLMENT_STATE_ACTIVE;
  OK(cadenas_mfa_enrolment_state(mfa, "nobody", &st));
  CHECK(st == CADENAS_ENROLMENT_STATE_NONE);
  cadenas_auth_outcome o = CADENAS_AUTH_OUTCOME_OK;
  OK(cadenas_authenticate(auth, "no-such-user-here", "x", NULL, &o));
  CHECK(o == CADENAS_AUTH_OUTCOME_BAD_PASSWORD);
  /* the parent's responder too: its connections were left alone by the child */
  CHECK_RC(cadenas_responder_status(resp, "no-such-user-here", &rep), CADENAS_RESULT_USER_NOT_FOUND);
  cadenas_responder_free(resp);
  cadenas_authenticator_free(auth);
  cadenas_mfa_free(mfa);
  cadenas_config_free(cfg);
}

/* Every entry point, each required pointer NULL in turn: CADENAS_RESULT_NULL_POINTER (a
 * getter returning a count gives 0), never a crash; and the index and range arguments out of
 * range: OUT_OF_RANGE or INVALID_INPUT. The handles are NULL here: a NULL handle is checked
 * before anything else, and the live-handle cases with a NULL output are below. */
static void test_every_entry_point_null_and_range(const char *config_path) {
  char buf[64];
  size_t n = 0;
  const char *users[] = {"x"};
  cadenas_config *cfg = NULL;
  cadenas_mfa *mfa = NULL;
  cadenas_enrolment *en = NULL;
  cadenas_secret_list *codes = NULL;
  cadenas_authenticator *auth = NULL;
  cadenas_report *rep = NULL;
  cadenas_contain_options *opts = NULL;
  cadenas_responder *r = NULL;
  cadenas_enrolment_state st;
  cadenas_auth_outcome o;
  cadenas_user_status us;
  cadenas_result err;
  bool had;
  uint64_t step;
  const uint8_t key[20] = {0};
  const cadenas_result NP = CADENAS_RESULT_NULL_POINTER;
  /* NULL handles and inputs */
  CHECK_RC(cadenas_last_error_message(NULL, 4, &n), NP);
  CHECK_RC(cadenas_config_from_toml(NULL, NULL, &cfg), NP);
  CHECK_RC(cadenas_mfa_open(NULL, false, &mfa), NP);
  CHECK_RC(cadenas_mfa_enroll(NULL, "x", &en), NP);
  CHECK_RC(cadenas_enrolment_uri(NULL, buf, sizeof buf, &n), NP);
  CHECK_RC(cadenas_enrolment_secret(NULL, buf, sizeof buf, &n), NP);
  CHECK_RC(cadenas_enrolment_qr_svg(NULL, buf, sizeof buf, &n), NP);
  CHECK_RC(cadenas_mfa_verify_at(NULL, "x", "123456", 0), NP);
  CHECK_RC(cadenas_mfa_enrolment_state(NULL, "x", &st), NP);
  CHECK_RC(cadenas_mfa_reset(NULL, "x", &had), NP);
  CHECK_RC(cadenas_mfa_recovery_codes(NULL, "x", &codes), NP);
  CHECK_RC(cadenas_mfa_use_recovery_code(NULL, "x", "abcd-efgh"), NP);
  CHECK(cadenas_secret_list_len(NULL) == 0);
  CHECK_RC(cadenas_secret_list_get(NULL, 0, buf, sizeof buf, &n), NP);
  CHECK_RC(cadenas_authenticator_new(NULL, &auth), NP);
  CHECK_RC(cadenas_authenticate(NULL, "x", "pw", NULL, &o), NP);
  CHECK_RC(cadenas_totp_code(NULL, 20, 0, 6, 30, CADENAS_TOTP_ALGORITHM_SHA1, buf, sizeof buf, &n), NP);
  CHECK_RC(cadenas_totp_code(key, sizeof key, 0, 6, 30, CADENAS_TOTP_ALGORITHM_SHA1, buf, sizeof buf, NULL), NP);
  CHECK_RC(cadenas_totp_verify(NULL, 20, "123456", 0, 6, 30, CADENAS_TOTP_ALGORITHM_SHA1, &step), NP);
  CHECK_RC(cadenas_totp_verify(key, sizeof key, NULL, 0, 6, 30, CADENAS_TOTP_ALGORITHM_SHA1, &step), NP);
  CHECK(cadenas_report_done(NULL) == 0 && cadenas_report_failed(NULL) == 0);
  CHECK_RC(cadenas_report_user_name(NULL, 0, buf, sizeof buf, &n), NP);
  CHECK_RC(cadenas_report_user_status(NULL, 0, &us, &err), NP);
  CHECK_RC(cadenas_report_incident(NULL, buf, sizeof buf, &n), NP);
  CHECK_RC(cadenas_report_journal_head(NULL, buf, sizeof buf, &n), NP);
  CHECK_RC(cadenas_contain_options_new(NULL), NP);
  CHECK_RC(cadenas_contain_options_set_password_file(NULL, "/tmp/x"), NP);
  CHECK_RC(cadenas_contain_options_set_password_callback(NULL, NULL, NULL), NP);
  CHECK_RC(cadenas_contain_options_set_progress_callback(NULL, NULL, NULL), NP);
  CHECK_RC(cadenas_contain_options_set_incident(NULL, "INC"), NP);
  CHECK_RC(cadenas_contain_options_set_reason(NULL, "why"), NP);
  CHECK_RC(cadenas_contain_options_set_reset_again(NULL, "why"), NP);
  CHECK_RC(cadenas_contain_options_set_allow_protected(NULL, true), NP);
  CHECK_RC(cadenas_contain_options_set_concurrency(NULL, 4), NP);
  CHECK_RC(cadenas_handover_password(NULL, buf, sizeof buf, &n), NP);
  CHECK_RC(cadenas_responder_new(NULL, "/tmp/j.jsonl", &r), NP);
  CHECK_RC(cadenas_responder_new_without_journal(NULL, &r), NP);
  CHECK_RC(cadenas_responder_contain(NULL, "x", NULL, &rep), NP);
  CHECK_RC(cadenas_responder_contain_list(NULL, users, 1, NULL, &rep), NP);
  CHECK_RC(cadenas_responder_resume(NULL, NULL, NULL, &rep), NP);
  CHECK_RC(cadenas_responder_plan(NULL, users, 1, false, &rep), NP);
  CHECK_RC(cadenas_responder_release(NULL, "x", NULL, &rep), NP);
  /* optional pointers: NULL config and path is "no journal named", not a NULL pointer */
  CHECK_RC(cadenas_journal_verify(NULL, NULL, &rep), CADENAS_RESULT_INVALID_INPUT);
  /* live handles, NULL outputs and inputs */
  OK(cadenas_config_from_file(config_path, &cfg));
  CHECK_RC(cadenas_mfa_open(cfg, false, NULL), NP);
  CHECK_RC(cadenas_authenticator_new(cfg, NULL), NP);
  CHECK_RC(cadenas_responder_new(cfg, "/tmp/j.jsonl", NULL), NP);
  CHECK_RC(cadenas_responder_new_without_journal(cfg, NULL), NP);
  CHECK_RC(cadenas_journal_verify(cfg, NULL, NULL), NP);
  CHECK_RC(cadenas_incident_report(cfg, NULL, "x", NULL), NP);
  OK(cadenas_contain_options_new(&opts));
  CHECK_RC(cadenas_contain_options_set_password_file(opts, NULL), NP);
  /* ranges */
  CHECK_RC(cadenas_contain_options_set_concurrency(opts, 0), CADENAS_RESULT_INVALID_INPUT);
  CHECK_RC(cadenas_totp_code(key, sizeof key, 0, 9, 30, CADENAS_TOTP_ALGORITHM_SHA1, buf, sizeof buf, &n), CADENAS_RESULT_INVALID_INPUT);
  CHECK_RC(cadenas_totp_code(key, sizeof key, 0, 6, 0, CADENAS_TOTP_ALGORITHM_SHA1, buf, sizeof buf, &n), CADENAS_RESULT_INVALID_INPUT);
  CHECK_RC(cadenas_totp_code(key, sizeof key, 0, 6, 30, 7, buf, sizeof buf, &n), CADENAS_RESULT_INVALID_INPUT);
  CHECK_RC(cadenas_totp_verify(key, sizeof key, "123456", 0, 6, 301, CADENAS_TOTP_ALGORITHM_SHA1, &step), CADENAS_RESULT_INVALID_INPUT);
  OK(cadenas_responder_new_without_journal(cfg, &r));
  /* without a journal nothing changes: contain is refused before anything is contacted */
  OK(cadenas_contain_options_set_password_file(opts, path_in_work("never-created.tsv")));
  CHECK_RC(cadenas_responder_contain(r, "x", opts, &rep), CADENAS_RESULT_JOURNAL);
  CHECK_RC(cadenas_responder_release(r, "x", "test", &rep), CADENAS_RESULT_JOURNAL);
  CHECK_RC(cadenas_responder_plan(r, NULL, 1, false, &rep), NP);
  CHECK_RC(cadenas_responder_plan(r, users, 1, false, NULL), NP);
  OK(cadenas_responder_plan(r, users, 1, false, &rep));
  CHECK_RC(cadenas_report_user_name(rep, 1, buf, sizeof buf, &n), CADENAS_RESULT_OUT_OF_RANGE);
  CHECK_RC(cadenas_report_user_status(rep, 1, &us, &err), CADENAS_RESULT_OUT_OF_RANGE);
  CHECK_RC(cadenas_report_user_status(rep, 0, NULL, &err), NP);
  cadenas_report_free(rep);
  cadenas_responder_free(r);
  cadenas_contain_options_free(opts);
  cadenas_config_free(cfg);
}

/* Every descriptor the library opens (the journal, SQLite, LDAP and PostgreSQL sockets, the
 * runtime's epoll and eventfd) is close-on-exec: a host that execs a helper (a PAM stack
 * running a script, a RADIUS server spawning a program) never hands it the library's files. */
enum { MAX_FD = 1024 };
static void open_fds(unsigned char open[MAX_FD]) {
  for (int fd = 0; fd < MAX_FD; fd++) {
    open[fd] = fcntl(fd, F_GETFD) != -1;
  }
}

static void test_cloexec(const char *config_path, const char *user) {
  unsigned char before[MAX_FD], after[MAX_FD];
  open_fds(before);
  cadenas_config *cfg = NULL;
  OK(cadenas_config_from_file(config_path, &cfg));
  cadenas_mfa *mfa = NULL;
  OK(cadenas_mfa_open(cfg, true, &mfa));
  cadenas_authenticator *auth = NULL;
  OK(cadenas_authenticator_new(cfg, &auth));
  cadenas_auth_outcome o = CADENAS_AUTH_OUTCOME_OK;
  OK(cadenas_authenticate(auth, user, "not the password", NULL, &o));
  cadenas_responder *r = NULL;
  OK(cadenas_responder_new(cfg, path_in_work("cloexec-journal.jsonl"), &r));
  open_fds(after);
  int opened = 0, inherited = 0;
  for (int fd = 0; fd < MAX_FD; fd++) {
    if (after[fd] && !before[fd]) {
      opened++;
      if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC)) {
        inherited++;
        fprintf(stderr, "fd %d opened by the library is not close-on-exec\n", fd);
      }
    }
  }
  CHECK(opened >= 3); /* the journal, the MFA database, the directory connection at least */
  CHECK(inherited == 0);
  cadenas_responder_free(r);
  cadenas_authenticator_free(auth);
  cadenas_mfa_free(mfa);
  cadenas_config_free(cfg);
}

/* The watcher's rules from C: a replay over a log in Dovecot's format (alice's home network,
 * then a new one) is one alert as JSON; the journal's alerts read back; bad input typed. */
static void test_watch(const char *config_path) {
  const char *log = path_in_work("dovecot.log");
  char log_path[1024];
  snprintf(log_path, sizeof log_path, "%s", log);
  FILE *f = fopen(log_path, "w");
  CHECK(f != NULL);
  if (f == NULL) {
    return;
  }
  fputs("2026-12-07 08:00:00 imap-login: Info: Login: user=<alice>, method=PLAIN, rip=192.0.2.10, "
        "lip=127.0.0.1, mpid=1\n"
        "2026-12-07 09:00:00 imap-login: Info: Login: user=<alice>, method=PLAIN, rip=203.0.113.7, "
        "lip=127.0.0.1, mpid=2\n",
        f);
  fclose(f);
  /* the lab's config, with [watch] */
  FILE *in = fopen(config_path, "r");
  CHECK(in != NULL);
  if (in == NULL) {
    return;
  }
  static char toml[65536];
  size_t len = fread(toml, 1, sizeof toml - 1024, in);
  fclose(in);
  snprintf(toml + len, sizeof toml - len, "\n[watch]\ndovecot_logs = [\"%s\"]\nstate = \"%s\"\n", log_path,
           path_in_work("watch.db"));
  cadenas_config *cfg = NULL;
  OK(cadenas_config_from_toml(toml, NULL, &cfg));
  cadenas_report *rep = NULL;
  const char *logs[] = {log_path};
  OK(cadenas_watch_replay(cfg, logs, 1, NULL, &rep));
  CHECK(rep != NULL && cadenas_report_kind(rep) == CADENAS_OPERATION_WATCH_REPLAY);
  CHECK(cadenas_report_done(rep) == 1);
  char *json = report_json(rep);
  CHECK(json != NULL);
  if (json != NULL) {
    CHECK(strstr(json, "\"rule\": \"new_network\"") != NULL);
    CHECK(strstr(json, "cadenas contain --from-ip 203.0.113.7/32") != NULL);
    free(json);
  }
  cadenas_report_free(rep);
  rep = NULL;
  OK(cadenas_watch_replay(cfg, logs, 1, "2026-12-07T08:30:00Z", &rep));
  CHECK(cadenas_report_done(rep) == 0); /* alice's home login is before: nothing to compare with */
  cadenas_report_free(rep);
  rep = NULL;
  CHECK_RC(cadenas_watch_replay(cfg, logs, 1, "yesterday-ish", &rep), CADENAS_RESULT_INVALID_INPUT);
  CHECK(rep == NULL);
  const char *missing[] = {path_in_work("no-such.log")};
  CHECK_RC(cadenas_watch_replay(cfg, missing, 1, NULL, &rep), CADENAS_RESULT_IO);
  CHECK_RC(cadenas_watch_replay(cfg, NULL, 1, NULL, &rep), CADENAS_RESULT_NULL_POINTER);
  CHECK_RC(cadenas_watch_replay(cfg, logs, 1, NULL, NULL), CADENAS_RESULT_NULL_POINTER);
  CHECK_RC(cadenas_watch_replay(NULL, logs, 1, NULL, &rep), CADENAS_RESULT_NULL_POINTER);
  /* what running watchers journaled: an array, whatever it holds */
  cadenas_result rc = cadenas_watch_alerts(cfg, NULL, &rep);
  CHECK(rc == CADENAS_RESULT_OK || rc == CADENAS_RESULT_JOURNAL);
  if (rc == CADENAS_RESULT_OK) {
    CHECK(cadenas_report_kind(rep) == CADENAS_OPERATION_WATCH_ALERTS);
    json = report_json(rep);
    CHECK(json != NULL && json[0] == '[');
    free(json);
    cadenas_report_free(rep);
    rep = NULL;
  }
  CHECK_RC(cadenas_watch_alerts(NULL, NULL, &rep), CADENAS_RESULT_NULL_POINTER);
  cadenas_config_free(cfg);
  /* a config without [watch] */
  OK(cadenas_config_from_file(config_path, &cfg));
  CHECK_RC(cadenas_watch_replay(cfg, logs, 1, NULL, &rep), CADENAS_RESULT_CONFIG);
  cadenas_config_free(cfg);
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: %s RFC6238_JSON WORKDIR CONFIG USER_PASSWORD USER1 USER2 USER3\n", argv[0]);
    return 2;
  }
  arg_workdir = argv[2];
  test_boundary();
  test_totp_vectors(argv[1]);
  test_mfa();
  test_lab(argv[3], argv[4], argv[5], argv[6], argv[7]);
  test_fork(argv[3]);
  test_cloexec(argv[3], argv[5]);
  test_every_entry_point_null_and_range(argv[3]);
  test_watch(argv[3]);
  printf("test_api: %d checks, %d failed\n", checks, failures);
  return failures == 0 ? 0 : 1;
}
