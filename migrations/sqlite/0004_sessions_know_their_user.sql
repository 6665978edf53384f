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
CREATE TABLE IF NOT EXISTS tower_sessions (
    id          TEXT PRIMARY KEY NOT NULL,
    data        BLOB NOT NULL,
    expiry_date INTEGER NOT NULL
);

ALTER TABLE tower_sessions ADD COLUMN user_id INTEGER REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE tower_sessions ADD COLUMN handle TEXT;
ALTER TABLE tower_sessions ADD COLUMN logged_in_at INTEGER;
ALTER TABLE tower_sessions ADD COLUMN last_used_at INTEGER;
ALTER TABLE tower_sessions ADD COLUMN user_agent TEXT;

-- No index on user_id here (PostgreSQL has one): on SQLite its page, written at every login and
-- logout, measured 1.8 % of a login flow's instructions (callgrind, docs/performance.md), while
-- what reads by user (the account page's list, deleting a user) is rare and scans a table that
-- holds only live sessions — a single instance's, some milliseconds at tens of thousands.

DROP TABLE user_sessions;
