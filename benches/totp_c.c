/* TOTP verification from C, through libcadenas: `cadenas_mfa_verify_at` with the durable
 * replay guard (SQLite), throttling and the encrypted store — the call a PAM module or a
 * RADIUS plugin makes — on codes of successive steps for one enrolled user. The median of 3
 * runs of 500 verifications, as `benches/totp_python.py` measures `cadenas.Mfa.verify`; then
 * `cadenas_totp_verify` in memory, as it measures `cadenas.totp_verify` (3 runs of 200 000).
 * Side by side, the peer a C programmer writes: liboath's `oath_totp_validate` (±1 step)
 * and the replay guard as one conditional UPDATE on SQLite (prepared once), with SQLite's
 * defaults (rollback journal, synchronous FULL) and tuned to WAL (synchronous FULL) — the
 * durability of Cadenas' default. Appends {"bench": "c", ...} to $CADENAS_BENCH_RESULTS
 * (see benches/report.py).
 *
 *   benches/run.sh builds it against the release library:  totp_c TMPDIR
 */
#define _POSIX_C_SOURCE 200809L
#include <cadenas.h>
#include <liboath/oath.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNS 3
#define VERIFIES 500
#define IN_MEMORY_VERIFIES 200000

static int fail(const char *what, cadenas_result rc) {
  char msg[512] = "";
  size_t n = 0;
  cadenas_last_error_message(msg, sizeof msg, &n);
  fprintf(stderr, "totp_c: %s: result %d: %s\n", what, (int)rc, msg);
  return 1;
}

/* RFC 4648 base32 without padding (what cadenas_enrolment_secret gives) to bytes. */
static size_t base32_decode(const char *in, uint8_t *out, size_t cap) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  uint32_t acc = 0;
  int bits = 0;
  size_t n = 0;
  for (; *in; in++) {
    const char *p = strchr(alphabet, *in);
    if (p == NULL) return 0;
    acc = (acc << 5) | (uint32_t)(p - alphabet);
    bits += 5;
    if (bits >= 8) {
      if (n == cap) return 0;
      out[n++] = (uint8_t)(acc >> (bits - 8));
      bits -= 8;
    }
  }
  return n;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The peer: liboath + a SQLite conditional UPDATE in `path`, WAL or SQLite's defaults. The
 * median rate of RUNS runs of VERIFIES, or a negative value on failure. */
static double oath_peer(const char *path, const uint8_t *raw, size_t raw_len, int wal) {
  sqlite3 *db = NULL;
  if (sqlite3_open(path, &db) != SQLITE_OK) return -1;
  if (wal && sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK) return -1;
  if (sqlite3_exec(db,
                   "CREATE TABLE guard(user TEXT PRIMARY KEY, last_step INTEGER);"
                   "INSERT INTO guard VALUES ('bench', -1);",
                   NULL, NULL, NULL) != SQLITE_OK)
    return -1;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, "UPDATE guard SET last_step = ?1 WHERE user = 'bench' AND last_step < ?1", -1, &st,
                         NULL) != SQLITE_OK)
    return -1;
  time_t t = time(NULL);
  double rates[RUNS];
  for (int r = 0; r < RUNS; r++) {
    double start = now_s();
    for (int i = 0; i < VERIFIES; i++) {
      char otp[16];
      t += 30;
      if (oath_totp_generate((const char *)raw, raw_len, t, 30, 0, 6, otp) != OATH_OK) return -1;
      if (oath_totp_validate((const char *)raw, raw_len, t, 30, 0, 1, otp) < 0) return -1;
      sqlite3_bind_int64(st, 1, (sqlite3_int64)(t / 30));
      if (sqlite3_step(st) != SQLITE_DONE || sqlite3_changes(db) != 1) return -1;
      sqlite3_reset(st);
    }
    rates[r] = VERIFIES / (now_s() - start);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  qsort(rates, RUNS, sizeof rates[0], cmp);
  return rates[RUNS / 2];
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: totp_c TMPDIR\n");
    return 2;
  }
  char toml[2048];
  snprintf(toml, sizeof toml,
           "[directory]\nurl = \"ldaps://127.0.0.1:6360\"\nbind_dn = \"cn=x,dc=test\"\n"
           "bind_password_env = \"UNUSED\"\nbase_dns = [\"dc=test\"]\n"
           "[mfa]\ndatabase = \"%s/mfa-c.db\"\nkey_file = \"%s/mfa-c.key\"\n",
           argv[1], argv[1]);
  cadenas_config *cfg = NULL;
  cadenas_result rc = cadenas_config_from_toml(toml, NULL, &cfg);
  if (rc != CADENAS_RESULT_OK) return fail("config", rc);
  cadenas_mfa *mfa = NULL;
  rc = cadenas_mfa_open(cfg, true, &mfa);
  if (rc != CADENAS_RESULT_OK) return fail("mfa_open", rc);
  cadenas_enrolment *e = NULL;
  rc = cadenas_mfa_enroll(mfa, "bench", &e);
  if (rc != CADENAS_RESULT_OK) return fail("enroll", rc);
  char b32[128];
  size_t n = 0;
  rc = cadenas_enrolment_secret(e, b32, sizeof b32, &n);
  if (rc != CADENAS_RESULT_OK) return fail("secret", rc);
  uint8_t raw[80];
  size_t raw_len = base32_decode(b32, raw, sizeof raw);
  if (raw_len == 0) return fail("base32", CADENAS_RESULT_OK);

  uint64_t t = (uint64_t)time(NULL);
  double rates[RUNS];
  for (int r = 0; r < RUNS; r++) {
    double start = now_s();
    for (int i = 0; i < VERIFIES; i++) {
      char code[16];
      t += 30; /* every code a new step: the replay guard accepts it once */
      rc = cadenas_totp_code(raw, raw_len, t, 6, 30, CADENAS_TOTP_ALGORITHM_SHA1, code, sizeof code, &n);
      if (rc != CADENAS_RESULT_OK) return fail("totp_code", rc);
      rc = cadenas_mfa_verify_at(mfa, "bench", code, t);
      if (rc != CADENAS_RESULT_OK) return fail("verify", rc);
    }
    rates[r] = VERIFIES / (now_s() - start);
  }
  qsort(rates, RUNS, sizeof rates[0], cmp);
  printf("C: cadenas_mfa_verify_at (durable replay guard, throttling, encrypted store): %.0f/s (%.0f-%.0f)\n",
         rates[RUNS / 2], rates[0], rates[RUNS - 1]);

  /* in memory, as benches/totp_python.py measures cadenas.totp_verify: one code checked again
   * and again (±1 step), no guard */
  char code[16];
  rc = cadenas_totp_code(raw, raw_len, t, 6, 30, CADENAS_TOTP_ALGORITHM_SHA1, code, sizeof code, &n);
  if (rc != CADENAS_RESULT_OK) return fail("totp_code", rc);
  double mem_rates[RUNS];
  for (int r = 0; r < RUNS; r++) {
    double start = now_s();
    for (int i = 0; i < IN_MEMORY_VERIFIES; i++) {
      uint64_t step = 0;
      rc = cadenas_totp_verify(raw, raw_len, code, t, 6, 30, CADENAS_TOTP_ALGORITHM_SHA1, &step);
      if (rc != CADENAS_RESULT_OK || step != t / 30) return fail("totp_verify", rc);
    }
    mem_rates[r] = IN_MEMORY_VERIFIES / (now_s() - start);
  }
  qsort(mem_rates, RUNS, sizeof mem_rates[0], cmp);
  printf("C: cadenas_totp_verify (in memory): %.0f/s (%.0f-%.0f)\n", mem_rates[RUNS / 2], mem_rates[0],
         mem_rates[RUNS - 1]);
  memset(code, 0, sizeof code);

  if (oath_init() != OATH_OK) return fail("oath_init", CADENAS_RESULT_OK);
  char path[1024];
  snprintf(path, sizeof path, "%s/oath-default.db", argv[1]);
  double oath_default = oath_peer(path, raw, raw_len, 0);
  snprintf(path, sizeof path, "%s/oath-wal.db", argv[1]);
  double oath_wal = oath_peer(path, raw, raw_len, 1);
  oath_done();
  if (oath_default < 0 || oath_wal < 0) return fail("the liboath peer", CADENAS_RESULT_OK);
  printf("C: liboath + SQLite conditional UPDATE, SQLite defaults (rollback journal, FULL): %.0f/s (cadenas %.2fx)\n",
         oath_default, rates[RUNS / 2] / oath_default);
  printf("C: liboath + SQLite conditional UPDATE, WAL (FULL): %.0f/s (cadenas %.2fx)\n", oath_wal,
         rates[RUNS / 2] / oath_wal);
  const char *results = getenv("CADENAS_BENCH_RESULTS");
  if (results != NULL) {
    FILE *f = fopen(results, "a");
    if (f == NULL) return fail("results file", CADENAS_RESULT_OK);
    const char *repeat = getenv("CADENAS_BENCH_REPEAT");
    fprintf(f, "{\"bench\": \"c\", \"what\": \"cadenas_mfa_verify_per_s\", \"n\": 0, \"value\": %f, \"repeat\": \"%s\"}\n",
            rates[RUNS / 2], repeat ? repeat : "");
    fprintf(f, "{\"bench\": \"c\", \"what\": \"cadenas_totp_verify_per_s\", \"n\": 0, \"value\": %f, \"repeat\": \"%s\"}\n",
            mem_rates[RUNS / 2], repeat ? repeat : "");
    fprintf(f, "{\"bench\": \"c\", \"what\": \"oath_sqlite_default_guard_per_s\", \"n\": 0, \"value\": %f, \"repeat\": \"%s\"}\n",
            oath_default, repeat ? repeat : "");
    fprintf(f, "{\"bench\": \"c\", \"what\": \"oath_sqlite_wal_guard_per_s\", \"n\": 0, \"value\": %f, \"repeat\": \"%s\"}\n",
            oath_wal, repeat ? repeat : "");
    fclose(f);
  }
  memset(b32, 0, sizeof b32);
  memset(raw, 0, sizeof raw);
  cadenas_enrolment_free(e);
  cadenas_mfa_free(mfa);
  cadenas_config_free(cfg);
  return 0;
}
