-- Users and the provider identities that log into them (SQLite).
-- Identity is (provider, subject); e-mail is only a hint for linking, and only when verified.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL,
    username      TEXT    NOT NULL UNIQUE,
    display_name  TEXT,
    avatar_url    TEXT,
    created_at    INTEGER NOT NULL,
    last_login_at INTEGER NOT NULL
);

CREATE TABLE identities (
    provider         TEXT    NOT NULL,
    subject          TEXT    NOT NULL,
    user_id          INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email            TEXT    NOT NULL,
    email_normalized TEXT    NOT NULL,
    email_verified   BOOLEAN NOT NULL,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (provider, subject)
);

CREATE INDEX identities_by_user ON identities (user_id);
CREATE INDEX identities_by_verified_email ON identities (email_normalized) WHERE email_verified;
