-- Safe in production (issue 7): what a provider vouches for is recorded per provider's trust,
-- identities are bound to the issuer of their subject, and only trusted verified addresses link.
--
-- users.email_verified: a provider we trust vouched for users.email.
-- identities.email_verified: now means "believed": the provider said so *and* is trusted
--   (trust_email_verified). Old rows held the raw claim of possibly untrusted providers, so they
--   start unverified and are set again at their next login.
-- identities.links: this identity's verified address may link accounts (never the dev provider's).
--   Old rows start false: an account becomes a link target again once its owner logs in.
-- identities.issuer: who issued the subject. '' marks rows from before this migration; the
--   server adopts the configured issuer for them at start.
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE identities ADD COLUMN issuer TEXT NOT NULL DEFAULT '';
ALTER TABLE identities ADD COLUMN links BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE identities ADD COLUMN last_login_at BIGINT NOT NULL DEFAULT 0;
UPDATE identities SET email_verified = FALSE, last_login_at = created_at;
DROP INDEX identities_by_verified_email;
CREATE INDEX identities_by_linkable_email ON identities (email_normalized) WHERE links;
