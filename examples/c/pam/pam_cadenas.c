/*
 * pam_cadenas.so - PAM authentication with the directory password and, for members of the
 * directory's MFA group, a TOTP code, answered by cadenas_authenticate(): the durable replay
 * guard and the throttling apply across every process of the host.
 *
 *   auth required pam_cadenas.so config=/etc/cadenas/cadenas.toml [one_prompt] [digits=6]
 *                                [prompt=Password:] [code_prompt=Code:]
 *                                [try_first_pass|use_first_pass] [debug]
 *
 * one_prompt: the password and the code come in one answer, the code last (what Dovecot's PAM
 * passdb and other clients that can ask only once send: "password123456").
 *
 * Return codes: PAM_SUCCESS; PAM_AUTH_ERR for every refusal (wrong password, unknown user,
 * wrong or replayed code, no code, locked or contained account, expired or must-change
 * password) - the same code and the same log line, whichever it was; PAM_MAXTRIES while the
 * user's MFA is throttled; PAM_AUTHINFO_UNAVAIL when the directory or the MFA store cannot
 * be reached; PAM_SERVICE_ERR for a bad module line or config.
 *
 * Nothing of libcadenas outlives pam_sm_authenticate (every handle is made and freed inside
 * it), so the host may dlclose() the module after pam_end() and fork() between calls.
 */
#define _DEFAULT_SOURCE
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include <cadenas.h>

#define MAX_ANSWER 1024

struct options {
  const char *config;
  const char *prompt;
  const char *code_prompt;
  bool one_prompt;
  bool debug;
  size_t digits;
};

static int parse_options(pam_handle_t *pamh, int argc, const char **argv, struct options *o) {
  o->config = NULL;
  o->prompt = NULL;
  o->code_prompt = "Verification code: ";
  o->one_prompt = false;
  o->debug = false;
  o->digits = 6;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strncmp(a, "config=", 7) == 0) {
      o->config = a + 7;
    } else if (strncmp(a, "prompt=", 7) == 0) {
      o->prompt = a + 7;
    } else if (strncmp(a, "code_prompt=", 12) == 0) {
      o->code_prompt = a + 12;
    } else if (strcmp(a, "one_prompt") == 0) {
      o->one_prompt = true;
    } else if (strcmp(a, "debug") == 0) {
      o->debug = true;
    } else if (strncmp(a, "digits=", 7) == 0) {
      long d = strtol(a + 7, NULL, 10);
      if (d < 6 || d > 8) {
        pam_syslog(pamh, LOG_ERR, "digits must be 6 to 8: %s", a);
        return PAM_SERVICE_ERR;
      }
      o->digits = (size_t)d;
    } else if (strcmp(a, "try_first_pass") == 0 || strcmp(a, "use_first_pass") == 0 ||
               strcmp(a, "use_authtok") == 0) {
      /* read by pam_get_authtok() itself */
    } else {
      pam_syslog(pamh, LOG_ERR, "unknown option: %s", a);
      return PAM_SERVICE_ERR;
    }
  }
  if (o->config == NULL) {
    pam_syslog(pamh, LOG_ERR, "no config= option");
    return PAM_SERVICE_ERR;
  }
  return PAM_SUCCESS;
}

/* Asks one hidden question; the answer is copied into buf (wiped by the caller). */
static int ask_hidden(pam_handle_t *pamh, const char *prompt, char *buf, size_t len) {
  char *answer = NULL;
  int rc = pam_prompt(pamh, PAM_PROMPT_ECHO_OFF, &answer, "%s", prompt);
  if (rc != PAM_SUCCESS || answer == NULL) {
    if (answer != NULL) {
      explicit_bzero(answer, strlen(answer));
      free(answer);
    }
    return rc == PAM_SUCCESS ? PAM_CONV_ERR : rc;
  }
  size_t n = strlen(answer);
  if (n >= len) {
    explicit_bzero(answer, n);
    free(answer);
    return PAM_AUTH_ERR;
  }
  memcpy(buf, answer, n + 1);
  explicit_bzero(answer, n);
  free(answer);
  return PAM_SUCCESS;
}

/* One call to the library: a fresh handle, freed before returning. A new connection per check
 * on purpose: the code prompt between two checks lasts as long as the user takes, longer than
 * a directory may keep an idle connection open. */
static cadenas_result check(const cadenas_config *cfg, const char *user, const char *password,
                            const char *code, cadenas_auth_outcome *outcome) {
  cadenas_authenticator *auth = NULL;
  cadenas_result rc = cadenas_authenticator_new(cfg, &auth);
  if (rc == CADENAS_RESULT_OK) {
    rc = cadenas_authenticate(auth, user, password, code, outcome);
  }
  cadenas_authenticator_free(auth);
  return rc;
}

/* `in` made safe for one log line into `out` (always NUL-terminated): control characters
 * and the backslash written as C escapes (\n, \r, \t, \\, \xHH), so that a value from
 * outside (a user name, a server's message) can never start a line of its own in the log
 * file (a forged line for fail2ban or a SIEM). Bytes of 0x80 and above (UTF-8) are kept. A
 * value too long for `out` is cut, marked with "...". */
static void log_safe(const char *in, char *out, size_t out_len) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  for (const unsigned char *p = (const unsigned char *)in; *p != '\0'; p++) {
    char esc[5] = {0};
    if (*p == '\n') {
      strcpy(esc, "\\n");
    } else if (*p == '\r') {
      strcpy(esc, "\\r");
    } else if (*p == '\t') {
      strcpy(esc, "\\t");
    } else if (*p == '\\') {
      strcpy(esc, "\\\\");
    } else if (*p < 0x20 || *p == 0x7f) {
      esc[0] = '\\';
      esc[1] = 'x';
      esc[2] = hex[*p >> 4];
      esc[3] = hex[*p & 15];
    } else {
      esc[0] = (char)*p;
    }
    size_t n = strlen(esc);
    if (o + n + 4 > out_len) {
      if (out_len >= 4) {
        strcpy(out + (o < out_len - 4 ? o : out_len - 4), "...");
      }
      return;
    }
    memcpy(out + o, esc, n);
    o += n;
  }
  out[o] = '\0';
}

static void log_library_error(pam_handle_t *pamh, cadenas_result rc) {
  char msg[512];
  char safe[1024];
  size_t n = 0;
  if (cadenas_last_error_message(msg, sizeof msg, &n) != CADENAS_RESULT_OK) {
    snprintf(msg, sizeof msg, "(details too long)");
  }
  log_safe(msg, safe, sizeof safe);
  pam_syslog(pamh, LOG_ERR, "cadenas error %u: %s", (unsigned)rc, safe);
}

/* Splits "password123456": true if the answer ends with `digits` digits after something. */
static bool split_code(char *answer, size_t digits, char *code, size_t code_len) {
  size_t n = strlen(answer);
  if (n <= digits || digits + 1 > code_len) {
    return false;
  }
  for (size_t i = n - digits; i < n; i++) {
    if (!isdigit((unsigned char)answer[i])) {
      return false;
    }
  }
  memcpy(code, answer + n - digits, digits + 1);
  explicit_bzero(answer + n - digits, digits);
  answer[n - digits] = '\0';
  return true;
}

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv) {
  (void)flags;
  struct options o;
  int prc = parse_options(pamh, argc, argv, &o);
  if (prc != PAM_SUCCESS) {
    return prc;
  }
  const char *user = NULL;
  prc = pam_get_user(pamh, &user, NULL);
  if (prc != PAM_SUCCESS || user == NULL || *user == '\0') {
    return PAM_AUTH_ERR;
  }
  /* The password (the stack's, with try_first_pass/use_first_pass): never freed by us. */
  const char *token = NULL;
  prc = pam_get_authtok(pamh, PAM_AUTHTOK, &token, o.prompt);
  if (prc != PAM_SUCCESS || token == NULL) {
    return PAM_AUTH_ERR;
  }
  char password[MAX_ANSWER];
  char code[16];
  bool have_code = false;
  if (strlen(token) >= sizeof password) {
    return PAM_AUTH_ERR;
  }
  strcpy(password, token);
  code[0] = '\0';
  if (o.one_prompt) {
    have_code = split_code(password, o.digits, code, sizeof code);
  }

  cadenas_config *cfg = NULL;
  int result = PAM_AUTH_ERR;
  cadenas_auth_outcome outcome = CADENAS_AUTH_OUTCOME_BAD_PASSWORD;
  cadenas_result rc = cadenas_config_from_file(o.config, &cfg);
  if (rc != CADENAS_RESULT_OK) {
    log_library_error(pamh, rc);
    result = PAM_SERVICE_ERR;
    goto out;
  }
  rc = check(cfg, user, password, have_code ? code : NULL, &outcome);
  if (rc == CADENAS_RESULT_OK && o.one_prompt && have_code &&
      outcome == CADENAS_AUTH_OUTCOME_BAD_PASSWORD) {
    /* Not "password + code" after all: perhaps a password that ends in digits, of a user
     * without MFA. Once more with the whole answer (costs a second bind only then). */
    strcpy(password, token);
    explicit_bzero(code, sizeof code);
    have_code = false;
    rc = check(cfg, user, password, NULL, &outcome);
  }
  if (rc == CADENAS_RESULT_OK && !o.one_prompt &&
      (outcome == CADENAS_AUTH_OUTCOME_MFA_REQUIRED || outcome == CADENAS_AUTH_OUTCOME_BAD_PASSWORD)) {
    /* Asked after a wrong password too, so that the prompt does not tell an MFA user's right
     * password from a wrong one; the answer is then thrown away. */
    bool wrong_password = outcome == CADENAS_AUTH_OUTCOME_BAD_PASSWORD;
    int arc = ask_hidden(pamh, o.code_prompt, code, sizeof code);
    if (arc == PAM_SUCCESS && !wrong_password && code[0] != '\0') {
      rc = check(cfg, user, password, code, &outcome);
    } else if (arc != PAM_SUCCESS) {
      outcome = CADENAS_AUTH_OUTCOME_BAD_PASSWORD;
    }
  }
  if (rc == CADENAS_RESULT_INVALID_USER_NAME) {
    /* A name no directory entry can have: a refusal like any other (not logged apart). */
    result = PAM_AUTH_ERR;
  } else if (rc != CADENAS_RESULT_OK) {
    log_library_error(pamh, rc);
    result = PAM_AUTHINFO_UNAVAIL;
  } else if (outcome == CADENAS_AUTH_OUTCOME_OK) {
    result = PAM_SUCCESS;
  } else if (outcome == CADENAS_AUTH_OUTCOME_THROTTLED) {
    result = PAM_MAXTRIES;
  } else {
    result = PAM_AUTH_ERR;
  }
  if (o.debug) {
    pam_syslog(pamh, LOG_DEBUG, "outcome %u", (unsigned)outcome);
  }
  char safe_user[512];
  log_safe(user, safe_user, sizeof safe_user);
  if (result == PAM_AUTH_ERR) {
    /* One line for every refusal: which case it was is not said (PAM convention). */
    pam_syslog(pamh, LOG_NOTICE, "authentication failure; user=%s", safe_user);
  } else if (result == PAM_MAXTRIES) {
    pam_syslog(pamh, LOG_NOTICE, "too many failed codes; user=%s", safe_user);
  }

out:
  cadenas_config_free(cfg);
  explicit_bzero(password, sizeof password);
  explicit_bzero(code, sizeof code);
  return result;
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv) {
  (void)pamh;
  (void)flags;
  (void)argc;
  (void)argv;
  return PAM_SUCCESS;
}
