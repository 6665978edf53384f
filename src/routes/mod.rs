//! HTTP routes, one file per area; each exposes `router()`.

pub mod account;
pub mod api;
pub mod gateway;
pub mod health;
pub mod login;
pub mod pages;
