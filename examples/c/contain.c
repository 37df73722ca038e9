/*
 * contain - contains one user with libcadenas and prints the report as JSON.
 *
 *   contain CONFIG USER PASSWORD_FILE
 *
 * Locks the account, sets a strong random password (forced change) written to
 * PASSWORD_FILE (created 0600, never overwritten), revokes sessions and requires MFA; every
 * step is journaled in the config's [journal] path. Exit status: 0 contained, 1 not (the
 * report says why), 2 the call failed.
 *
 *   cc -std=c11 contain.c $(pkg-config --cflags --libs cadenas)
 */
#include <stdio.h>
#include <stdlib.h>

#include <cadenas.h>

static int fail(const char *what, cadenas_result rc) {
  char msg[1024];
  size_t n = 0;
  if (cadenas_last_error_message(msg, sizeof msg, &n) != CADENAS_RESULT_OK) {
    msg[0] = '\0';
  }
  fprintf(stderr, "contain: %s failed (%u): %s\n", what, (unsigned)rc, msg);
  return 2;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s CONFIG USER PASSWORD_FILE\n", argv[0]);
    return 2;
  }
  cadenas_config *cfg = NULL;
  cadenas_responder *responder = NULL;
  cadenas_contain_options *opts = NULL;
  cadenas_report *report = NULL;
  char *json = NULL;
  int status = 2;
  cadenas_result rc;

  if ((rc = cadenas_config_from_file(argv[1], &cfg)) != CADENAS_RESULT_OK) {
    status = fail("reading the config", rc);
    goto out;
  }
  if ((rc = cadenas_responder_new(cfg, NULL, &responder)) != CADENAS_RESULT_OK) {
    status = fail("connecting", rc);
    goto out;
  }
  if ((rc = cadenas_contain_options_new(&opts)) != CADENAS_RESULT_OK ||
      (rc = cadenas_contain_options_set_password_file(opts, argv[3])) != CADENAS_RESULT_OK ||
      (rc = cadenas_contain_options_set_reason(opts, "examples/c/contain")) != CADENAS_RESULT_OK) {
    status = fail("setting the options", rc);
    goto out;
  }
  if ((rc = cadenas_responder_contain(responder, argv[2], opts, &report)) != CADENAS_RESULT_OK) {
    status = fail("contain", rc);
    goto out;
  }
  /* Ask for the size, then copy. */
  size_t n = 0;
  if (cadenas_report_json(report, NULL, 0, &n) != CADENAS_RESULT_BUFFER_TOO_SMALL ||
      (json = malloc(n + 1)) == NULL ||
      (rc = cadenas_report_json(report, json, n + 1, &n)) != CADENAS_RESULT_OK) {
    status = fail("reading the report", rc);
    goto out;
  }
  printf("%s\n", json);
  status = cadenas_report_done(report) == 1 ? 0 : 1;

out:
  free(json);
  cadenas_report_free(report);
  cadenas_contain_options_free(opts);
  cadenas_responder_free(responder);
  cadenas_config_free(cfg);
  return status;
}
