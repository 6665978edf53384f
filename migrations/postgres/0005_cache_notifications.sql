-- Several instances on one PostgreSQL keep their in-memory caches coherent (issue 11): every
-- change to a session row that an instance may have cached (an update or a delete: logout,
-- revocation, id rotation, expiry cleanup, a user's deletion by cascade), and every change to a
-- user or an identity, is announced with NOTIFY by a trigger, inside the writing transaction —
-- no statement more for the writer, and the announcement is sent exactly when the change commits.
-- Each instance LISTENs and drops its cached copy (sessions::coherence).
CREATE FUNCTION loginwith_session_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('loginwith_sessions', OLD.id);
    RETURN NULL;
END $$;

CREATE TRIGGER loginwith_session_changed AFTER UPDATE OR DELETE ON tower_sessions.session
    FOR EACH ROW EXECUTE FUNCTION loginwith_session_changed();

CREATE FUNCTION loginwith_account_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        PERFORM pg_notify('loginwith_accounts', COALESCE(NEW.id, OLD.id)::text);
    ELSE
        PERFORM pg_notify('loginwith_accounts', COALESCE(NEW.user_id, OLD.user_id)::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER loginwith_user_changed AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION loginwith_account_changed();
CREATE TRIGGER loginwith_identity_changed AFTER INSERT OR UPDATE OR DELETE ON identities
    FOR EACH ROW EXECUTE FUNCTION loginwith_account_changed();
