-- The session table carries its user (issue 10), replacing migration 0003's separate index.
--
-- The session store (sessions::SqlSessions) writes these columns in the same upsert as the
-- session itself, so listing a user's sessions, ending them and deleting a user cost no statement
-- on the login path, and logout, id rotation and expiry keep the list right by construction (it
-- is the same row). The table is tower-sessions-sqlx-store's, created here when missing with the
-- same three columns, so databases that store made keep their sessions.
--
-- user_id: NULL for an anonymous session; ON DELETE CASCADE ends a deleted user's sessions, and
--   a session of a user who no longer exists cannot be saved (the store ends it instead).
-- handle: the session's public name (the account page, the API); the id is the cookie's secret.
--   96 random bits; looked up only among one user's sessions, so it needs no index of its own
--   (one index fewer to write at every login).
-- logged_in_at, last_used_at: Unix seconds; last_used_at moves when the session is saved (at the
--   login, then about once a day).
-- user_agent: the browser's User-Agent at the login, clipped.
CREATE SCHEMA IF NOT EXISTS tower_sessions;

CREATE TABLE IF NOT EXISTS tower_sessions.session (
    id          TEXT PRIMARY KEY NOT NULL,
    data        BYTEA NOT NULL,
    expiry_date TIMESTAMPTZ NOT NULL
);

ALTER TABLE tower_sessions.session
    ADD COLUMN user_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
    ADD COLUMN handle TEXT,
    ADD COLUMN logged_in_at BIGINT,
    ADD COLUMN last_used_at BIGINT,
    ADD COLUMN user_agent TEXT;

CREATE INDEX tower_sessions_by_user ON tower_sessions.session (user_id) WHERE user_id IS NOT NULL;

DROP TABLE user_sessions;
