-- Nothing on SQLite: one instance per database file (enforced at start), so its caches are the
-- only ones. PostgreSQL's version of this migration announces changes to the other instances.
SELECT 1;
