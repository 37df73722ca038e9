/* TOTP verification from C, through libcadenas: `cadenas_mfa_verify_at` with the durable
 * replay guard (SQLite), throttling and the encrypted store — the call a PAM module or a
 * RADIUS plugin makes — on codes of successive steps for one enrolled user. The median of 3
 * runs of 500 verifications, as `benches/totp_python.py` measures `cadenas.Mfa.verify`; then
 * `cadenas_totp_verify` in memory, as it measures `cadenas.totp_verify` (3 runs of 200 000).
 * Appends {"bench": "c", ...} to $CADENAS_BENCH_RESULTS (see benches/report.py).
 *
 *   benches/run.sh builds it against the release library:  totp_c TMPDIR
 */
#define _POSIX_C_SOURCE 200809L
#include <cadenas.h>
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
  const char *results = getenv("CADENAS_BENCH_RESULTS");
  if (results != NULL) {
    FILE *f = fopen(results, "a");
    if (f == NULL) return fail("results file", CADENAS_RESULT_OK);
    const char *repeat = getenv("CADENAS_BENCH_REPEAT");
    fprintf(f, "{\"bench\": \"c\", \"what\": \"cadenas_mfa_verify_per_s\", \"n\": 0, \"value\": %f, \"repeat\": \"%s\"}\n",
            rates[RUNS / 2], repeat ? repeat : "");
    fprintf(f, "{\"bench\": \"c\", \"what\": \"cadenas_totp_verify_per_s\", \"n\": 0, \"value\": %f, \"repeat\": \"%s\"}\n",
            mem_rates[RUNS / 2], repeat ? repeat : "");
    fclose(f);
  }
  memset(b32, 0, sizeof b32);
  memset(raw, 0, sizeof raw);
  cadenas_enrolment_free(e);
  cadenas_mfa_free(mfa);
  cadenas_config_free(cfg);
  return 0;
}
