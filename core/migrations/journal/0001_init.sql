-- Cadenas journal on PostgreSQL, version 1: one hash chain, one row per record. `line` is
-- exactly the line the file journal would hold (JSON with its own hash and MAC), so that
-- `journal export` writes a file that verifies the same way.
CREATE TABLE journal_records (
    seq  BIGINT PRIMARY KEY CHECK (seq >= 0),
    line TEXT NOT NULL
);
