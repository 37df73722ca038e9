-- Cadenas MFA store on PostgreSQL, version 1: the same tables as the SQLite store.
-- Secrets are ChaCha20-Poly1305 ciphertexts under the key file of each host (never the key).
CREATE TABLE mfa_meta (
    k TEXT PRIMARY KEY,
    v BYTEA NOT NULL
);
CREATE TABLE mfa_totp (
    login     TEXT PRIMARY KEY,
    nonce     BYTEA NOT NULL,
    secret    BYTEA NOT NULL,
    algorithm TEXT NOT NULL,
    digits    BIGINT NOT NULL,
    period    BIGINT NOT NULL,
    state     TEXT NOT NULL,
    last_step BIGINT
);
CREATE TABLE mfa_failures (
    login        TEXT PRIMARY KEY,
    count        BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    locked_until BIGINT
);
CREATE TABLE mfa_recovery (
    id    BIGSERIAL PRIMARY KEY,
    login TEXT NOT NULL,
    hash  TEXT NOT NULL
);
CREATE INDEX mfa_recovery_login ON mfa_recovery (login);
