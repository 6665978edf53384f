//! All integration tests, in one binary: each starts the real server on a random loopback port
//! with a fresh database and talks HTTP to it.

mod binary;
mod fake_oidc;
mod helpers;
mod mock_provider;

mod account;
mod account_sessions;
mod apple;
mod audit;
mod bitbucket;
mod browser;
mod cluster;
mod config_errors;
mod deploy;
mod dev_flow;
mod discord;
mod enterprise_idps;
mod examples;
mod facebook;
mod faults;
mod gateway;
mod github;
mod google;
mod hostile;
mod instances;
mod json_api;
mod library;
mod linkedin;
mod linking;
mod metrics;
mod microsoft;
mod oidc;
mod openapi;
mod production;
mod properties;
mod proxies;
mod redis_sessions;
mod sessions;
mod slack;
mod token_auth;
mod twitch;
mod x;
