-- Which sessions belong to which user (issue 10: the account page lists them, revokes one or all
-- the others, and deleting the account ends them all).
--
-- Written by the session layer (sessions::index) whenever a logged-in session is saved, *before*
-- the session itself: every stored logged-in session has its row here. The truth about whether a
-- session is alive stays in tower-sessions' own table: listings join it (so logout, id rotation
-- and expiry show at once), and the periodic cleanup removes rows whose session is gone. There
-- is no foreign key to that table, which the session store creates and owns.
--
-- handle: the session's public name, shown to the user and used to revoke it; the session id is
--   the cookie's secret and never leaves the server.
-- user_id: ON DELETE CASCADE, and a session of a user who no longer exists cannot be saved (the
--   insert fails, and the session layer ends that session instead).
CREATE TABLE user_sessions (
    session_id   TEXT    PRIMARY KEY,
    handle       TEXT    NOT NULL UNIQUE,
    user_id      BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT  NOT NULL,
    last_used_at BIGINT  NOT NULL,
    user_agent   TEXT    NOT NULL
);

CREATE INDEX user_sessions_by_user ON user_sessions (user_id);
