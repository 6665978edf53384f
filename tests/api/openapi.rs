//! `GET /api/openapi.json` against what the API really answers, on SQLite and PostgreSQL: every
//! endpoint is called into each status its document lists (success, and each error a client
//! can cause), and each answer must be listed there and validate against the schema listed for
//! it (JSON Schema 2020-12, as OpenAPI 3.1 says; objects closed, so an undocumented field fails
//! too). A listed status that no call reached fails as well: the document cannot promise more
//! than the tests saw.

use crate::db_tests;
use crate::dev_flow::one_user_two_providers;
use crate::helpers::*;
use reqwest::header::{CONTENT_TYPE, ORIGIN};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::BTreeSet;

db_tests!(every_answer_of_every_endpoint_validates_against_the_openapi_document);

/// One call as the document names it: method, path template, status.
type Seen = (String, String, u16);

struct Checker {
    doc: Value,
    seen: BTreeSet<Seen>,
}

/// How a call is sent.
#[derive(Clone, Copy)]
enum How<'a> {
    /// As a page's own script sends a change: our Origin and a JSON content type.
    SameOrigin,
    /// From another origin.
    CrossOrigin,
    /// Our origin, but a content type an HTML form could send.
    FormLike,
    /// A plain request (reads).
    Plain,
    /// SameOrigin with this JSON body.
    Body(&'a str),
}

impl Checker {
    async fn call(
        &mut self,
        app: &TestApp,
        method: Method,
        path: &str,
        template: &str,
        send: How<'_>,
    ) -> u16 {
        let mut request = app.client.request(method.clone(), app.url(path));
        request = match send {
            How::SameOrigin => {
                request.header(ORIGIN, app.address.clone()).header(CONTENT_TYPE, "application/json")
            }
            How::CrossOrigin => {
                request.header(ORIGIN, "https://evil.example").header(CONTENT_TYPE, "application/json")
            }
            How::FormLike => request.header(ORIGIN, app.address.clone()).header(CONTENT_TYPE, "text/plain"),
            How::Plain => request,
            How::Body(body) => request
                .header(ORIGIN, app.address.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_owned()),
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type =
            response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = response.bytes().await.unwrap();
        self.check(method.as_str(), template, status, content_type.as_deref(), &body);
        status
    }

    fn check(&mut self, method: &str, template: &str, status: u16, content_type: Option<&str>, body: &[u8]) {
        let what = format!("{method} {template} -> {status}");
        let operation = &self.doc["paths"][template][method.to_lowercase()];
        assert!(operation.is_object(), "{what}: the operation is not in the document");
        let listed = &operation["responses"][status.to_string()];
        assert!(listed.is_object(), "{what}: this status is not in the document: {}", operation["responses"]);
        self.seen.insert((method.to_lowercase(), template.to_owned(), status));
        let schema = &listed["content"]["application/json"]["schema"];
        if body.is_empty() {
            assert!(listed["content"].is_null(), "{what}: documented with content, answered none");
            return;
        }
        assert_eq!(content_type, Some("application/json"), "{what}");
        let instance: Value =
            serde_json::from_slice(body).unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
        if template == "/api/openapi.json" {
            return;
        }
        assert!(schema.is_object(), "{what}: a JSON answer without a documented schema: {listed}");
        let mut schema = schema.clone();
        schema["components"] = self.doc["components"].clone();
        close_objects(&mut schema);
        let validator =
            jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("{what}: bad schema: {e}"));
        let errors: Vec<String> =
            validator.iter_errors(&instance).map(|e| format!("{e} at {}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{what}: {instance}\ndoes not validate: {errors:#?}");
    }

    /// Every (method, path, status) the document lists.
    fn listed(&self) -> BTreeSet<Seen> {
        let mut listed = BTreeSet::new();
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for status in operation["responses"].as_object().unwrap().keys() {
                    listed.insert((method.clone(), path.clone(), status.parse().unwrap()));
                }
            }
        }
        listed
    }
}

/// Adds `additionalProperties: false` to every object schema with properties that says nothing
/// about extra ones: an answer with a field the document does not name fails.
pub fn close_objects(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(close_objects);
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

async fn every_answer_of_every_endpoint_validates_against_the_openapi_document(db: Db) {
    let (_a, _b, app) = one_user_two_providers(db).await;
    let response = app.get("/api/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")), "{}", doc["openapi"]);
    assert_eq!(doc["servers"][0]["url"], app.address);
    let mut c = Checker { doc, seen: BTreeSet::new() };
    // The check is live: answers that differ from the document fail it.
    let me = r#"{"id":1,"email":"a@example.com","email_verified":true,"username":"a","display_name":null,"avatar_url":null,"identities":[]}"#;
    c.check("GET", "/api/me", 200, Some("application/json"), me.as_bytes());
    for wrong in [
        r#"{"id":"1","email":"a@example.com","email_verified":true,"username":"a","display_name":null,"avatar_url":null,"identities":[]}"#,
        r#"{"id":1,"email":"a@example.com","email_verified":true,"username":"a","display_name":null,"avatar_url":null,"identities":[],"extra":1}"#,
        r#"{"id":1,"email":"a@example.com"}"#,
    ] {
        let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            c.check("GET", "/api/me", 200, Some("application/json"), wrong.as_bytes())
        }));
        assert!(failed.is_err(), "{wrong} should not validate");
    }
    c.seen.clear();
    let other = app.another_browser();
    crate::dev_flow::mock_login(&other, "a").await;
    let stranger = app.another_browser();

    use How::*;
    use Method as M;
    c.call(&app, M::GET, "/api/openapi.json", "/api/openapi.json", Plain).await;
    c.call(&app, M::GET, "/api/providers?next=%2F", "/api/providers", Plain).await;
    c.call(&app, M::GET, "/api/me", "/api/me", Plain).await;
    c.call(&stranger, M::GET, "/api/me", "/api/me", Plain).await;
    c.call(&app, M::GET, "/api/me/sessions", "/api/me/sessions", Plain).await;
    c.call(&stranger, M::GET, "/api/me/sessions", "/api/me/sessions", Plain).await;

    // Every change: from another origin, form-like, and logged out.
    let changes = [
        (M::POST, "/api/logout", "/api/logout"),
        (M::DELETE, "/api/me/sessions/x", "/api/me/sessions/{id}"),
        (M::DELETE, "/api/me/identities/a", "/api/me/identities/{provider}"),
        (M::DELETE, "/api/me", "/api/me"),
    ];
    for (method, path, template) in &changes {
        assert_eq!(c.call(&app, method.clone(), path, template, CrossOrigin).await, 403);
        assert_eq!(c.call(&app, method.clone(), path, template, FormLike).await, 415);
        if *path != "/api/logout" {
            assert_eq!(c.call(&stranger, method.clone(), path, template, SameOrigin).await, 401);
        }
    }
    let sessions = "/api/me/sessions/{id}";
    assert_eq!(c.call(&app, M::DELETE, "/api/me/sessions/no-such", sessions, SameOrigin).await, 404);
    let listed: Value = app.get("/api/me/sessions").await.json().await.unwrap();
    let other_id = listed["sessions"].as_array().unwrap().iter().find(|s| s["current"] == false).unwrap()
        ["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        c.call(&app, M::DELETE, &format!("/api/me/sessions/{other_id}"), sessions, SameOrigin).await,
        204
    );

    let identities = "/api/me/identities/{provider}";
    assert_eq!(c.call(&app, M::DELETE, "/api/me/identities/zzz", identities, SameOrigin).await, 404);
    assert_eq!(c.call(&app, M::DELETE, "/api/me/identities/a", identities, SameOrigin).await, 204);
    assert_eq!(c.call(&app, M::DELETE, "/api/me/identities/b", identities, SameOrigin).await, 409);

    assert_eq!(c.call(&app, M::DELETE, "/api/me", "/api/me", Body(r#"{"confirm":"nobody"}"#)).await, 400);
    assert_eq!(c.call(&app, M::DELETE, "/api/me", "/api/me", SameOrigin).await, 204);
    assert_eq!(c.call(&app, M::POST, "/api/logout", "/api/logout", SameOrigin).await, 204);

    let unseen: Vec<_> = c.listed().difference(&c.seen).cloned().collect();
    assert!(unseen.is_empty(), "listed in the document but never answered: {unseen:?}");
}
