//! A Stripe-shaped server for the Stripe tests and benchmark: no local server implements
//! Stripe's API, so this one keeps events and webhook endpoints per account and lists them the
//! way Stripe documents (newest first, `limit`, `starting_after`, `created[gte|lte]`,
//! `delivery_success`, `Stripe-Account`), with every field Stripe's schema marks required.
//! It is strict where Stripe is: an unknown parameter, a bad `limit` or an unknown cursor is a
//! 400, a wrong key a 401, a missing permission a 403 naming the `rak_…` permission. Every
//! request is logged, so tests and the benchmark can count and inspect what was sent.
//! Self-contained (no `super::*`), so `benches/stripe.rs` includes it by path.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The key the fake accepts.
pub const STRIPE_KEY: &str = "rk_test_51PulseKey";
/// The version it expects unless told otherwise: the exporter's default.
pub const STRIPE_VERSION: &str = "2024-06-20";

/// One stored event.
#[derive(Debug, Clone)]
pub struct FakeEvent {
    pub id: String,
    pub created: i64,
    pub kind: String,
    pub pending_webhooks: u64,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Logged {
    pub path: String,
    pub query: Vec<(String, String)>,
    pub account: Option<String>,
    pub version: Option<String>,
    /// When it arrived.
    pub at: std::time::Instant,
    /// The ids of the first (newest) and last item of the page answered, if any.
    pub page: Option<(String, String)>,
    /// The page answered said more follow.
    pub has_more: bool,
}

impl Logged {
    /// The value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A request of the events check that starts a run, `previous` being the one before it
    /// of the same account: the first page of the listing of new events. Later pages name
    /// the far end of the page before (`starting_after` its last item, going down;
    /// `ending_before` its first, going up); gaps and re-checks come after it in a run.
    pub fn starts_events_run(&self, previous: Option<&Logged>) -> bool {
        if self.path != "/v1/events"
            || self.param("limit") != Some("100")
            || self.param("starting_after").is_some()
            || self.param("delivery_success").is_some()
        {
            return false;
        }
        let Some(before) = self.param("ending_before") else {
            return true;
        };
        let continues = previous.is_some_and(|p| {
            p.has_more
                && p.param("ending_before").is_some()
                && p.page.as_ref().is_some_and(|(first, _)| first == before)
        });
        !continues
    }
}

#[derive(Default)]
struct Account {
    /// Newest first.
    events: Vec<FakeEvent>,
    endpoints: Vec<Value>,
}

#[derive(Default)]
struct State {
    accounts: HashMap<String, Account>,
    /// (account, path) pairs the key may not read.
    forbidden: HashSet<(String, String)>,
    requests: Vec<Logged>,
    next_id: u64,
    version: String,
}

/// The server and its data.
pub struct FakeStripe {
    pub server: MockServer,
    state: Arc<Mutex<State>>,
}

fn error(status: u16, kind: &str, code: Option<&str>, message: &str) -> ResponseTemplate {
    let mut e = json!({"type": kind, "message": message});
    if let Some(c) = code {
        e["code"] = json!(c);
    }
    ResponseTemplate::new(status).set_body_json(json!({ "error": e }))
}

fn event_json(e: &FakeEvent) -> Value {
    json!({
        "id": e.id, "object": "event", "api_version": STRIPE_VERSION, "created": e.created,
        "data": {"object": {"id": format!("in_{}", &e.id[4..]), "object": "invoice"}},
        "livemode": false, "pending_webhooks": e.pending_webhooks,
        "request": {"id": null, "idempotency_key": null}, "type": e.kind
    })
}

/// A webhook endpoint with every required field.
pub fn endpoint_json(id: &str, url: &str, status: &str) -> Value {
    json!({
        "id": id, "object": "webhook_endpoint", "api_version": null, "application": null,
        "created": 1_700_000_000, "description": null, "enabled_events": ["*"],
        "livemode": false, "metadata": {}, "status": status, "url": url
    })
}

struct Responder(Arc<Mutex<State>>);

impl Respond for Responder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let header = |name: &str| {
            req.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let query: Vec<(String, String)> = req
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let logged = Logged {
            path: req.url.path().to_owned(),
            query: query.clone(),
            account: header("stripe-account"),
            version: header("stripe-version"),
            at: std::time::Instant::now(),
            page: None,
            has_more: false,
        };
        let mut state = self.0.lock().unwrap();
        state.requests.push(logged.clone());
        if header("authorization").as_deref() != Some(&format!("Bearer {STRIPE_KEY}")) {
            return error(
                401,
                "invalid_request_error",
                None,
                "Invalid API Key provided: rk_test_****Key",
            );
        }
        if logged.version.as_deref() != Some(state.version.as_str()) {
            return error(
                400,
                "invalid_request_error",
                None,
                "Invalid Stripe API version",
            );
        }
        let account_id = logged.account.clone().unwrap_or_default();
        if !state.accounts.contains_key(&account_id) {
            return error(403, "invalid_request_error", None, &format!("The provided key does not have access to account '{account_id}' (or that account does not exist)."));
        }
        if state
            .forbidden
            .contains(&(account_id.clone(), logged.path.clone()))
        {
            let permission = if logged.path.contains("webhook") {
                "rak_webhook_read"
            } else {
                "rak_event_read"
            };
            return error(403, "invalid_request_error", None, &format!("The provided key 'rk_test_****Key' does not have the required permissions for this endpoint on account 'acct_platform'. Having the '{permission}' permission would allow this request to continue."));
        }
        let allowed: &[&str] = match logged.path.as_str() {
            "/v1/events" => &[
                "created[gte]",
                "created[lte]",
                "created[gt]",
                "created[lt]",
                "delivery_success",
                "ending_before",
                "limit",
                "starting_after",
                "type",
            ],
            "/v1/webhook_endpoints" => &["ending_before", "limit", "starting_after"],
            _ => {
                return error(
                    404,
                    "invalid_request_error",
                    Some("resource_missing"),
                    &format!("Unrecognized request URL (GET: {})", logged.path),
                )
            }
        };
        let mut seen = HashSet::new();
        for (k, _) in &query {
            if !allowed.contains(&k.as_str()) {
                return error(
                    400,
                    "invalid_request_error",
                    Some("parameter_unknown"),
                    &format!("Received unknown parameter: {k}"),
                );
            }
            if !seen.insert(k.as_str()) {
                return error(
                    400,
                    "invalid_request_error",
                    None,
                    &format!("Duplicate parameter: {k}"),
                );
            }
        }
        let limit = match logged.param("limit").map(str::parse::<usize>) {
            None => 10,
            Some(Ok(n)) if (1..=100).contains(&n) => n,
            _ => {
                return error(
                    400,
                    "invalid_request_error",
                    Some("parameter_invalid_integer"),
                    "Invalid limit: must be an integer between 1 and 100",
                )
            }
        };
        let mut bounds = Vec::new();
        for (k, v) in &query {
            if k.starts_with("created[") {
                match v.parse::<i64>() {
                    Ok(t) => bounds.push((k.clone(), t)),
                    Err(_) => {
                        return error(
                            400,
                            "invalid_request_error",
                            Some("parameter_invalid_integer"),
                            &format!("Invalid integer: {v}"),
                        )
                    }
                }
            }
        }
        let delivered = match logged.param("delivery_success") {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(v) => {
                return error(
                    400,
                    "invalid_request_error",
                    None,
                    &format!("Invalid boolean: {v}"),
                )
            }
        };
        let account = &state.accounts[&account_id];
        // Filter, then page, then render the page only: a window may hold 10,000 events.
        let (ids, render): (Vec<&str>, Box<dyn Fn(usize) -> Value + '_>) =
            if logged.path == "/v1/events" {
                let listed: Vec<&FakeEvent> = account
                    .events
                    .iter()
                    .filter(|e| {
                        bounds.iter().all(|(k, t)| match k.as_str() {
                            "created[gte]" => e.created >= *t,
                            "created[gt]" => e.created > *t,
                            "created[lte]" => e.created <= *t,
                            _ => e.created < *t,
                        }) && delivered.is_none_or(|d| d == (e.pending_webhooks == 0))
                    })
                    .collect();
                let ids = listed.iter().map(|e| e.id.as_str()).collect();
                (ids, Box::new(move |i| event_json(listed[i])))
            } else {
                let ids = account
                    .endpoints
                    .iter()
                    .map(|e| e["id"].as_str().unwrap_or_default())
                    .collect();
                (ids, Box::new(|i| account.endpoints[i].clone()))
            };
        if let Some(before) = logged.param("ending_before") {
            // The page just above the cursor (newer events), still newest first; has_more
            // says whether newer ones remain.
            if logged.param("starting_after").is_some() {
                return error(
                    400,
                    "invalid_request_error",
                    None,
                    "You may only specify one of these parameters: ending_before, starting_after.",
                );
            }
            let Some(cursor) = account.events.iter().find(|e| e.id == before) else {
                return error(
                    400,
                    "invalid_request_error",
                    Some("resource_missing"),
                    &format!("No such event: '{before}'"),
                );
            };
            let key = (cursor.created, cursor.id.as_str());
            let above = account
                .events
                .iter()
                .filter(|e| (e.created, e.id.as_str()) > key)
                .map(|e| e.id.as_str())
                .collect::<HashSet<_>>();
            let end = ids.iter().take_while(|i| above.contains(*i)).count();
            let start = end.saturating_sub(limit);
            let page: Vec<Value> = (start..end).map(render).collect();
            let has_more = start > 0;
            let ends = ids[start..end]
                .first()
                .map(|f| (f.to_string(), ids[end - 1].to_string()));
            if let Some(last) = state.requests.last_mut() {
                last.page = ends;
                last.has_more = has_more;
            }
            return ResponseTemplate::new(200).set_body_json(json!({
                "object": "list", "url": logged.path, "has_more": has_more, "data": page
            }));
        }
        let start = match logged.param("starting_after") {
            None => 0,
            Some(after) => {
                let known = account.events.iter().any(|e| e.id == after)
                    || account.endpoints.iter().any(|e| e["id"] == after);
                if !known {
                    return error(
                        400,
                        "invalid_request_error",
                        Some("resource_missing"),
                        &format!("No such object: '{after}'"),
                    );
                }
                ids.iter()
                    .position(|i| *i == after)
                    .map_or(ids.len(), |p| p + 1)
            }
        };
        let end = (start + limit).min(ids.len());
        let page: Vec<Value> = (start..end).map(render).collect();
        let has_more = end < ids.len();
        let ends = ids[start.min(end)..end]
            .first()
            .map(|f| (f.to_string(), ids[end - 1].to_string()));
        if let Some(last) = state.requests.last_mut() {
            last.page = ends;
            last.has_more = has_more;
        }
        ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "url": logged.path, "has_more": has_more, "data": page
        }))
    }
}

impl FakeStripe {
    /// Starts the server with the platform account (`""`) and the given connected accounts,
    /// each empty. Error mocks mounted with a priority under 10 answer before it.
    pub async fn start(connected: &[&str]) -> FakeStripe {
        let server = MockServer::start().await;
        let mut state = State {
            version: STRIPE_VERSION.to_owned(),
            ..State::default()
        };
        for a in std::iter::once(&"").chain(connected) {
            state.accounts.insert((*a).to_owned(), Account::default());
        }
        let state = Arc::new(Mutex::new(state));
        Mock::given(wiremock::matchers::any())
            .respond_with(Responder(state.clone()))
            .with_priority(10)
            .mount(&server)
            .await;
        FakeStripe { server, state }
    }

    /// The base URL to configure as `api_base`.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The `Stripe-Version` the fake requires from now on.
    pub fn expect_version(&self, version: &str) {
        self.state.lock().unwrap().version = version.to_owned();
    }

    /// Adds an event to `account` (`""`: the platform); returns its id.
    pub fn add_event(
        &self,
        account: &str,
        created: i64,
        kind: &str,
        pending_webhooks: u64,
    ) -> String {
        let mut s = self.state.lock().unwrap();
        s.next_id += 1;
        let id = format!("evt_1Pulse{:012}", s.next_id);
        let events = &mut s.accounts.get_mut(account).expect("a known account").events;
        let at = events.partition_point(|e| (e.created, e.id.as_str()) > (created, id.as_str()));
        events.insert(
            at,
            FakeEvent {
                id: id.clone(),
                created,
                kind: kind.to_owned(),
                pending_webhooks,
            },
        );
        id
    }

    /// Stripe delivered the event to every endpoint.
    pub fn deliver(&self, id: &str) {
        let mut s = self.state.lock().unwrap();
        for a in s.accounts.values_mut() {
            for e in a.events.iter_mut().filter(|e| e.id == id) {
                e.pending_webhooks = 0;
            }
        }
    }

    /// Sets the account's webhook endpoints.
    pub fn set_endpoints(&self, account: &str, endpoints: Vec<Value>) {
        self.state
            .lock()
            .unwrap()
            .accounts
            .get_mut(account)
            .expect("a known account")
            .endpoints = endpoints;
    }

    /// The key may not read `path` (such as `/v1/webhook_endpoints`) of `account`.
    pub fn forbid(&self, account: &str, path: &str) {
        self.state
            .lock()
            .unwrap()
            .forbidden
            .insert((account.to_owned(), path.to_owned()));
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Logged> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Requests of the events check of `account` (`""`: the platform), split into runs.
    pub fn events_runs(&self, account: &str) -> Vec<Vec<Logged>> {
        let mut runs: Vec<Vec<Logged>> = Vec::new();
        for r in self.requests() {
            if r.path != "/v1/events"
                || r.param("limit") != Some("100")
                || r.account.as_deref().unwrap_or_default() != account
            {
                continue;
            }
            let previous = runs.last().and_then(|run| run.last());
            if r.starts_events_run(previous) || runs.is_empty() {
                runs.push(Vec::new());
            }
            runs.last_mut().unwrap().push(r);
        }
        runs
    }
}
