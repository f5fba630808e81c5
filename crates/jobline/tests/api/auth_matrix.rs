//! Who may call what: every route of the three dialects (PXM, Promotions, Zuora) against every
//! way a caller is refused, from one table, on both engines; plus the two token rules that
//! need time or a revocation (a configured lifetime expires tokens, a revoked client's tokens
//! stop at once).
//!
//! The rules (`shared/spec/DECISIONS.md`, Identity; `jobline-http/src/ep/auth.rs`,
//! `zuora/headers.rs`): no, garbage, expired and revoked tokens are 401, because both SDKs treat
//! only 401 as "authenticate again"; an implicit (shopper) token and a non-admin role are 403;
//! another tenant's resource is 404, never 403. Each answer is in its dialect's JSON error shape.

use crate::helpers::TestApp;
use jobline_core::{FakeClock, Role, TenantId};
use jobline_store::NewClient;
use jobline_testkit::{on_both_engines, Engine};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Which dialect serves a route, and so which error shape it answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Pxm,
    Promotions,
    Zuora,
}

/// What a request carries. Bodies are valid for the route, so a request that gets past
/// authentication reaches the store's tenant check rather than a body error.
#[derive(Debug, Clone, Copy)]
enum Body {
    Empty,
    /// JSON text with `{placeholders}`.
    Json(&'static str),
    /// A multipart form whose `file` part holds this text (PXM imports).
    File(&'static str),
    /// A `text/csv` body (a Zuora upload).
    Csv(&'static str),
}

/// What an admin of another tenant gets on the route.
#[derive(Debug, Clone, Copy)]
enum OtherTenant {
    /// The route names a resource of the first tenant: 404, as for an id that does not exist.
    NotFound,
    /// The route names a resource of the first tenant and answers as for an id that does not
    /// exist, which on this route is this success (Zuora deletes answer 200 either way, C.12);
    /// the resource is left alone.
    AsUnknown(u16),
    /// A collection route: the caller acts in its own tenant and gets this status, and the
    /// answer names nothing of the first tenant's.
    OwnTenant(u16),
}

use Body::{Csv, Empty, File, Json};
use Dialect::{Promotions, Pxm, Zuora};
use OtherTenant::{AsUnknown, NotFound, OwnTenant};

/// One route: `{name}` in the path or body stands for a resource of the first tenant;
/// `{family}` rows run once under `promotions` and once under `rule-promotions`.
struct Route {
    dialect: Dialect,
    method: &'static str,
    path: &'static str,
    body: Body,
    other: OtherTenant,
}

const fn r(
    dialect: Dialect,
    method: &'static str,
    path: &'static str,
    body: Body,
    other: OtherTenant,
) -> Route {
    Route { dialect, method, path, body, other }
}

const PRODUCT: &str = r#"{"data": {"type": "product", "attributes": {"name": "Tee", "sku": "b1",
    "slug": "b-1", "commodity_type": "physical", "status": "live"}}}"#;
const HIERARCHY: &str = r#"{"data": {"type": "hierarchy", "attributes": {"name": "H2"}}}"#;
const NODE: &str = r#"{"data": {"type": "node", "attributes": {"name": "N2", "slug": "n-2"}}}"#;
const VARIATION: &str = r#"{"data": {"type": "product-variation", "attributes": {"name": "C"}}}"#;
const OPTION: &str = r#"{"data": {"type": "product-variation-option",
    "attributes": {"name": "Blue", "description": "Blue"}}}"#;
const PRICEBOOK: &str = r#"{"data": {"type": "pricebook", "attributes": {"name": "Outlet"}}}"#;
const PRICE: &str = r#"{"data": {"type": "product-price", "attributes": {"sku": "s1",
    "currencies": {"USD": {"amount": 900, "includes_tax": false}}}}}"#;
const LINK_VARIATION: &str = r#"{"data": [{"type": "product-variation", "id": "{variation}"}]}"#;
const LINK_PRODUCT: &str = r#"{"data": [{"type": "product", "id": "{product}"}]}"#;
const PROMOTION: &str = r#"{"data": {"type": "promotion", "name": "Winter",
    "promotion_type": "fixed_discount"}}"#;
const CODES: &str = r#"{"data": {"type": "promotion_codes", "codes": [{"code": "{code}"}]}}"#;
const PROMOTION_JOB: &str = r#"{"data": {"type": "promotion_job", "job_type": "code_export"}}"#;
const TRUCK: &str = r#"{"definitions": {"truck": {"object": "truck", "label": "Truck",
    "type": "object", "properties": {"plate__c": {"type": "string", "label": "Plate"}}}}}"#;
const RECORDS: &str = r#"{"records": [{"vin__c": "V9"}]}"#;
const RECORD: &str = r#"{"vin__c": "V8"}"#;
const BULK_JOB: &str = r#"{"namespace": "default", "object": "truck", "operation": "create"}"#;

/// Every route of the three dialects: `routes_match_the_dialect_modules` checks this against the
/// `.route(…)` calls of `jobline-http/src/{pxm,promotions,zuora}/mod.rs`. The token endpoints
/// (`/oauth/access_token`, `/oauth/token`) take no bearer token and are not listed.
#[rustfmt::skip] // a table: one route per line
const ROUTES: &[Route] = &[
    // PXM jobs and job creation.
    r(Pxm, "GET", "/pcm/jobs", Empty, OwnTenant(200)),
    r(Pxm, "GET", "/pcm/jobs/{job}", Empty, NotFound),
    r(Pxm, "GET", "/pcm/jobs/{job}/errors", Empty, NotFound),
    r(Pxm, "POST", "/pcm/jobs/{job}/cancel", Empty, NotFound),
    r(Pxm, "POST", "/pcm/products/import", File("sku,name\nb2,Tee\n"), OwnTenant(201)),
    r(Pxm, "POST", "/pcm/pricebooks/import", File("{}\n"), OwnTenant(201)),
    r(Pxm, "POST", "/pcm/products/export", Empty, OwnTenant(201)),
    // PXM products.
    r(Pxm, "GET", "/pcm/products", Empty, OwnTenant(200)),
    r(Pxm, "POST", "/pcm/products", Json(PRODUCT), OwnTenant(201)),
    r(Pxm, "GET", "/pcm/products/{product}", Empty, NotFound),
    r(Pxm, "PUT", "/pcm/products/{product}", Json(PRODUCT), NotFound),
    r(Pxm, "DELETE", "/pcm/products/{product}", Empty, NotFound),
    r(Pxm, "POST", "/pcm/products/{product}/build", Empty, NotFound),
    r(Pxm, "GET", "/pcm/products/{product}/variations", Empty, NotFound),
    r(Pxm, "GET", "/pcm/products/{product}/nodes", Empty, NotFound),
    r(Pxm, "POST", "/pcm/products/{product}/relationships/variations", Json(LINK_VARIATION), NotFound),
    r(Pxm, "DELETE", "/pcm/products/{product}/relationships/variations", Json(LINK_VARIATION), NotFound),
    // PXM hierarchies and nodes.
    r(Pxm, "GET", "/pcm/hierarchies", Empty, OwnTenant(200)),
    r(Pxm, "POST", "/pcm/hierarchies", Json(HIERARCHY), OwnTenant(201)),
    r(Pxm, "GET", "/pcm/hierarchies/{hierarchy}", Empty, NotFound),
    r(Pxm, "PUT", "/pcm/hierarchies/{hierarchy}", Json(HIERARCHY), NotFound),
    r(Pxm, "DELETE", "/pcm/hierarchies/{hierarchy}", Empty, NotFound),
    r(Pxm, "POST", "/pcm/hierarchies/{hierarchy}/duplicate_job", Json(HIERARCHY), NotFound),
    r(Pxm, "GET", "/pcm/hierarchies/{hierarchy}/children", Empty, NotFound),
    r(Pxm, "GET", "/pcm/hierarchies/{hierarchy}/nodes", Empty, NotFound),
    r(Pxm, "POST", "/pcm/hierarchies/{hierarchy}/nodes", Json(NODE), NotFound),
    r(Pxm, "GET", "/pcm/hierarchies/{hierarchy}/nodes/{node}", Empty, NotFound),
    r(Pxm, "PUT", "/pcm/hierarchies/{hierarchy}/nodes/{node}", Json(NODE), NotFound),
    r(Pxm, "DELETE", "/pcm/hierarchies/{hierarchy}/nodes/{node}", Empty, NotFound),
    r(Pxm, "GET", "/pcm/hierarchies/{hierarchy}/nodes/{node}/children", Empty, NotFound),
    r(Pxm, "GET", "/pcm/hierarchies/{hierarchy}/nodes/{node}/products", Empty, NotFound),
    r(Pxm, "POST", "/pcm/hierarchies/{hierarchy}/nodes/{node}/relationships/products", Json(LINK_PRODUCT), NotFound),
    r(Pxm, "DELETE", "/pcm/hierarchies/{hierarchy}/nodes/{node}/relationships/products", Json(LINK_PRODUCT), NotFound),
    // PXM variations and options.
    r(Pxm, "GET", "/pcm/variations", Empty, OwnTenant(200)),
    r(Pxm, "POST", "/pcm/variations", Json(VARIATION), OwnTenant(201)),
    r(Pxm, "GET", "/pcm/variations/{variation}", Empty, NotFound),
    r(Pxm, "PUT", "/pcm/variations/{variation}", Json(VARIATION), NotFound),
    r(Pxm, "DELETE", "/pcm/variations/{variation}", Empty, NotFound),
    r(Pxm, "GET", "/pcm/variations/{variation}/options", Empty, NotFound),
    r(Pxm, "POST", "/pcm/variations/{variation}/options", Json(OPTION), NotFound),
    r(Pxm, "GET", "/pcm/variations/{variation}/options/{option}", Empty, NotFound),
    r(Pxm, "PUT", "/pcm/variations/{variation}/options/{option}", Json(OPTION), NotFound),
    r(Pxm, "DELETE", "/pcm/variations/{variation}/options/{option}", Empty, NotFound),
    // PXM price books and prices.
    r(Pxm, "GET", "/pcm/pricebooks", Empty, OwnTenant(200)),
    r(Pxm, "POST", "/pcm/pricebooks", Json(PRICEBOOK), OwnTenant(201)),
    r(Pxm, "GET", "/pcm/pricebooks/{pricebook}", Empty, NotFound),
    r(Pxm, "PUT", "/pcm/pricebooks/{pricebook}", Json(PRICEBOOK), NotFound),
    r(Pxm, "DELETE", "/pcm/pricebooks/{pricebook}", Empty, NotFound),
    r(Pxm, "GET", "/pcm/pricebooks/{pricebook}/prices", Empty, NotFound),
    r(Pxm, "POST", "/pcm/pricebooks/{pricebook}/prices", Json(PRICE), NotFound),
    r(Pxm, "GET", "/pcm/pricebooks/{pricebook}/prices/{price}", Empty, NotFound),
    r(Pxm, "PUT", "/pcm/pricebooks/{pricebook}/prices/{price}", Json(PRICE), NotFound),
    r(Pxm, "DELETE", "/pcm/pricebooks/{pricebook}/prices/{price}", Empty, NotFound),
    // Promotions, under both `/v2/promotions` and `/v2/rule-promotions`.
    r(Promotions, "GET", "/v2/{family}", Empty, OwnTenant(200)),
    r(Promotions, "POST", "/v2/{family}", Json(PROMOTION), OwnTenant(201)),
    r(Promotions, "GET", "/v2/{family}/{promotion}", Empty, NotFound),
    r(Promotions, "PUT", "/v2/{family}/{promotion}", Json(PROMOTION), NotFound),
    r(Promotions, "DELETE", "/v2/{family}/{promotion}", Empty, NotFound),
    r(Promotions, "GET", "/v2/{family}/{promotion}/codes", Empty, NotFound),
    r(Promotions, "POST", "/v2/{family}/{promotion}/codes", Json(CODES), NotFound),
    r(Promotions, "DELETE", "/v2/{family}/{promotion}/codes", Json(CODES), NotFound),
    r(Promotions, "DELETE", "/v2/{family}/{promotion}/codes/{code}", Empty, NotFound),
    r(Promotions, "GET", "/v2/{family}/{promotion}/jobs", Empty, NotFound),
    r(Promotions, "POST", "/v2/{family}/{promotion}/jobs", Json(PROMOTION_JOB), NotFound),
    r(Promotions, "POST", "/v2/{family}/{promotion}/jobs/{promotion_job}/cancel", Empty, NotFound),
    r(Promotions, "GET", "/v2/{family}/{promotion}/jobs/{promotion_job}/file", Empty, NotFound),
    // Zuora custom objects.
    r(Zuora, "GET", "/objects/definitions/default", Empty, OwnTenant(200)),
    r(Zuora, "POST", "/objects/definitions/default", Json(TRUCK), OwnTenant(200)),
    r(Zuora, "GET", "/objects/definitions/default/{object}", Empty, NotFound),
    r(Zuora, "DELETE", "/objects/definitions/default/{object}", Empty, NotFound),
    r(Zuora, "GET", "/objects/records/default/{object}", Empty, NotFound),
    r(Zuora, "POST", "/objects/records/default/{object}", Json(RECORDS), NotFound),
    r(Zuora, "GET", "/objects/records/default/{object}/{record}", Empty, NotFound),
    r(Zuora, "PUT", "/objects/records/default/{object}/{record}", Json(RECORD), NotFound),
    r(Zuora, "PATCH", "/objects/records/default/{object}/{record}", Json(RECORD), NotFound),
    r(Zuora, "DELETE", "/objects/records/default/{object}/{record}", Empty, AsUnknown(200)),
    r(Zuora, "GET", "/objects/jobs", Empty, OwnTenant(200)),
    r(Zuora, "POST", "/objects/jobs", Json(BULK_JOB), OwnTenant(200)),
    r(Zuora, "GET", "/objects/jobs/{bulk_job}", Empty, NotFound),
    r(Zuora, "POST", "/objects/jobs/{bulk_job}/files", Csv("vin__c\nV5\n"), NotFound),
    r(Zuora, "GET", "/objects/jobs/{bulk_job}/errors", Empty, NotFound),
    r(Zuora, "PATCH", "/objects/jobs/{bulk_job}/cancel", Empty, NotFound),
];

/// The ways a caller is refused: the columns of the matrix.
#[derive(Debug, Clone, Copy)]
enum Caller {
    NoToken,
    GarbageToken,
    ExpiredToken,
    RevokedClient,
    ImplicitGrant,
    SupportRole,
    OtherTenantAdmin,
}

const CALLERS: [Caller; 7] = [
    Caller::NoToken,
    Caller::GarbageToken,
    Caller::ExpiredToken,
    Caller::RevokedClient,
    Caller::ImplicitGrant,
    Caller::SupportRole,
    Caller::OtherTenantAdmin,
];

/// What a caller gets from a route.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// This status, in the dialect's error shape.
    Error(u16),
    /// This success status, naming nothing of the first tenant's.
    Served(u16),
    /// This status, as for an id that does not exist.
    AsUnknown(u16),
}

/// The cell of the matrix: what `caller` gets from `route`.
fn expected(caller: Caller, route: &Route) -> Expect {
    match caller {
        Caller::NoToken | Caller::GarbageToken | Caller::ExpiredToken | Caller::RevokedClient => {
            Expect::Error(401)
        }
        Caller::ImplicitGrant | Caller::SupportRole => Expect::Error(403),
        Caller::OtherTenantAdmin => match route.other {
            NotFound => Expect::Error(404),
            OwnTenant(status) => Expect::Served(status),
            AsUnknown(status) => Expect::AsUnknown(status),
        },
    }
}

/// The lifetime the matrix's app gives tokens; the expired token is this old and a second.
const LIFETIME: Duration = Duration::from_secs(600);

/// The first tenant (`default`, the bootstrap admin's) with one of each resource, and the
/// tokens of the columns that send one.
struct World {
    app: TestApp,
    ids: BTreeMap<&'static str, String>,
    /// The bootstrap admin's, got a lifetime and a second ago.
    expired: String,
    /// An admin client's of the first tenant, revoked after it got the token.
    revoked: String,
    /// The bootstrap admin's, by the implicit grant.
    implicit: String,
    /// A support client's of the first tenant.
    support: String,
    /// An admin client's of tenant `store-2`.
    other: String,
}

impl World {
    /// An API-only app whose tokens live [`LIFETIME`], the first tenant's resources, and the
    /// tokens; the clock has moved past the expired token's lifetime.
    async fn build(engine: Engine) -> Self {
        let clock = FakeClock::at_default();
        let app = TestApp::spawn_with_clock(engine, &clock, |config| {
            config.token_lifetime = LIFETIME;
        })
        .await;
        let admin = app.admin_token().await;
        let ids = resources(&app, &admin).await;
        let expired = app.ep_token(&app.admin).await;
        clock.advance(LIFETIME + Duration::from_secs(1));

        let default = TenantId::parse("default").unwrap();
        let revoked = app.store.create_client(&default, Role::Admin, None).await.unwrap();
        let revoked_token = app.ep_token(&revoked).await;
        app.store.revoke_client(&revoked.client.id).await.unwrap();
        let support = app.store.create_client(&default, Role::Support, None).await.unwrap();
        let store_2 = TenantId::parse("store-2").unwrap();
        let other = app.store.create_client(&store_2, Role::Admin, None).await.unwrap();
        let implicit = implicit_token(&app, &app.admin).await;
        let support = app.ep_token(&support).await;
        let other = app.ep_token(&other).await;
        World { ids, expired, revoked: revoked_token, implicit, support, other, app }
    }

    /// `text` with every `{name}` of a resource replaced by its id.
    fn fill(&self, text: &str, family: &str) -> String {
        let mut out = text.replace("{family}", family);
        for (name, id) in &self.ids {
            out = out.replace(&format!("{{{name}}}"), id);
        }
        out
    }

    /// Sends `route` (under promotions `family`) as `caller`.
    async fn send(&self, route: &Route, family: &str, caller: Caller) -> reqwest::Response {
        let method = Method::from_bytes(route.method.as_bytes()).unwrap();
        let url = format!("{}{}", self.app.address, self.fill(route.path, family));
        let mut req = self.app.client.request(method, url);
        let token = match caller {
            Caller::NoToken => None,
            Caller::GarbageToken => Some("not-a-token"),
            Caller::ExpiredToken => Some(self.expired.as_str()),
            Caller::RevokedClient => Some(self.revoked.as_str()),
            Caller::ImplicitGrant => Some(self.implicit.as_str()),
            Caller::SupportRole => Some(self.support.as_str()),
            Caller::OtherTenantAdmin => Some(self.other.as_str()),
        };
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req = match route.body {
            Empty => req,
            Json(text) => {
                req.header("content-type", "application/json").body(self.fill(text, family))
            }
            File(text) => {
                let part = reqwest::multipart::Part::bytes(text.as_bytes().to_vec())
                    .file_name("input")
                    .mime_str("text/plain")
                    .unwrap();
                req.multipart(reqwest::multipart::Form::new().part("file", part))
            }
            Csv(text) => req.header("content-type", "text/csv").body(text),
        };
        req.send().await.unwrap()
    }
}

/// Creates one of each resource for the token's tenant; returns their ids by placeholder name.
async fn resources(app: &TestApp, token: &str) -> BTreeMap<&'static str, String> {
    let post = |path: String, body: Value| async move {
        let r = app.authed(Method::POST, &path, token).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json::<Value>().await.unwrap()
    };
    let data =
        |kind: &str, attributes: Value| json!({"data": {"type": kind, "attributes": attributes}});
    let id = |doc: Value| doc["data"]["id"].as_str().unwrap().to_owned();
    let mut ids = BTreeMap::new();
    let shirt =
        json!({"name": "Shirt", "sku": "s1", "slug": "shirt-1", "commodity_type": "physical"});
    ids.insert("product", id(post("/pcm/products".into(), data("product", shirt)).await));
    let h = json!({"name": "Clothes", "slug": "clothes"});
    let h = id(post("/pcm/hierarchies".into(), data("hierarchy", h)).await);
    let node = json!({"name": "Men", "slug": "men"});
    ids.insert("node", id(post(format!("/pcm/hierarchies/{h}/nodes"), data("node", node)).await));
    ids.insert("hierarchy", h);
    let v =
        id(post("/pcm/variations".into(), data("product-variation", json!({"name": "Size"})))
            .await);
    let option = data("product-variation-option", json!({"name": "Small", "description": "S"}));
    ids.insert("option", id(post(format!("/pcm/variations/{v}/options"), option).await));
    ids.insert("variation", v);
    let b = id(post("/pcm/pricebooks".into(), data("pricebook", json!({"name": "Retail"}))).await);
    let price =
        json!({"sku": "s1", "currencies": {"USD": {"amount": 1000, "includes_tax": false}}});
    ids.insert(
        "price",
        id(post(format!("/pcm/pricebooks/{b}/prices"), data("product-price", price)).await),
    );
    ids.insert("pricebook", b);
    ids.insert("job", id(post("/pcm/products/export".into(), json!({})).await));

    let promotion = json!({"data": {"type": "promotion", "name": "Summer", "promotion_type": "fixed_discount"}});
    let p = id(post("/v2/promotions".into(), promotion).await);
    let codes = json!({"data": {"type": "promotion_codes", "codes": [{"code": "alpha"}]}});
    post(format!("/v2/promotions/{p}/codes"), codes).await;
    ids.insert("code", "alpha".into());
    let job = json!({"data": {"type": "promotion_job", "job_type": "code_export"}});
    ids.insert("promotion_job", id(post(format!("/v2/promotions/{p}/jobs"), job).await));
    ids.insert("promotion", p);

    let vehicle = json!({"definitions": {"vehicle": {"object": "vehicle", "label": "Vehicle",
        "type": "object", "properties": {"vin__c": {"type": "string", "label": "VIN"}}}}});
    post("/objects/definitions/default".into(), vehicle).await;
    ids.insert("object", "vehicle".into());
    let records =
        post("/objects/records/default/vehicle".into(), json!({"records": [{"vin__c": "V1"}]}))
            .await;
    ids.insert("record", records["records"][0]["Id"].as_str().unwrap().to_owned());
    let bulk = json!({"namespace": "default", "object": "vehicle", "operation": "create"});
    let bulk = post("/objects/jobs".into(), bulk).await;
    ids.insert("bulk_job", bulk["Id"].as_str().unwrap().to_owned());
    ids
}

/// An Elastic Path implicit-grant (shopper) token for `client`.
async fn implicit_token(app: &TestApp, client: &NewClient) -> String {
    let r = app
        .client
        .post(format!("{}/oauth/access_token", app.address))
        .form(&[("grant_type", "implicit"), ("client_id", &client.client.id.to_string())])
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// Why an answer is not what the table says, or `None` when it is.
fn check(dialect: Dialect, want: u16, status: u16, body: &Value) -> Option<String> {
    if status != want {
        return Some(format!("status {status}, want {want}: {body}"));
    }
    let shaped = match dialect {
        Pxm | Promotions => {
            body["errors"][0]["status"].as_str() == Some(want.to_string().as_str())
                && body["errors"][0]["title"].is_string()
                && body["errors"][0]["detail"].is_string()
        }
        Zuora if want == 401 => *body == json!({"message": "Authentication error"}),
        Zuora if want == 403 => body["code"] == 71013013 && body["message"].is_string(),
        Zuora => body["code"].is_i64() && body["message"].is_string(),
    };
    (!shaped).then(|| format!("not in the {dialect:?} error shape: {body}"))
}

/// Every route × every refused caller answers as the table says, in the dialect's shape; an
/// admin of another tenant acting on a collection sees nothing of the first tenant's.
async fn every_route_refuses_every_caller_it_should(engine: Engine) {
    let world = World::build(engine).await;
    let first_tenant_ids: Vec<&String> = world.ids.values().collect();
    let mut failures = Vec::new();
    let mut checked = 0;
    for route in ROUTES {
        let families: &[&str] = if route.path.contains("{family}") {
            &["promotions", "rule-promotions"]
        } else {
            &[""]
        };
        for family in families {
            for caller in CALLERS {
                let response = world.send(route, family, caller).await;
                let status = response.status().as_u16();
                let text = response.text().await.unwrap();
                let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let problem = match expected(caller, route) {
                    Expect::Error(want) => check(route.dialect, want, status, &body),
                    Expect::AsUnknown(want) => {
                        (status != want).then(|| format!("status {status}, want {want}: {text}"))
                    }
                    Expect::Served(want) if status != want => {
                        Some(format!("status {status}, want {want}: {text}"))
                    }
                    Expect::Served(_) => first_tenant_ids
                        .iter()
                        .find(|id| text.contains(id.as_str()))
                        .map(|id| format!("answer names the first tenant's {id}: {text}")),
                };
                if let Some(problem) = problem {
                    let path = world.fill(route.path, family);
                    failures.push(format!("{} {path} as {caller:?}: {problem}", route.method));
                }
                checked += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} answers wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    world.owner_still_has_everything().await;
}

impl World {
    /// The 404s above mean "not yours", not "gone": the first tenant's admin still reaches every
    /// resource the table names, and no refused call removed one.
    async fn owner_still_has_everything(&self) {
        let token = self.app.admin_token().await;
        for route in ROUTES.iter().filter(|r| r.method == "GET" && r.path.contains("}")) {
            for family in ["promotions", "rule-promotions"] {
                let path = self.fill(route.path, family);
                let r = self.app.authed(Method::GET, &path, &token).send().await.unwrap();
                assert!(
                    ![401, 403, 404].contains(&r.status().as_u16()),
                    "the owner is refused {path}: {}",
                    r.status()
                );
            }
        }
        let codes = format!("/v2/promotions/{}/codes", self.ids["promotion"]);
        let r = self.app.authed(Method::GET, &codes, &token).send().await.unwrap();
        assert!(r.text().await.unwrap().contains(&self.ids["code"]), "the code is still there");
    }
}

/// A token outlives neither the configured lifetime (here 60 s, on the app's clock) on any
/// dialect, and both token endpoints say how long it lives.
async fn a_configured_token_lifetime_expires_tokens(engine: Engine) {
    let clock = FakeClock::at_default();
    let lifetime = Duration::from_secs(60);
    let app =
        TestApp::spawn_with_clock(engine, &clock, |config| config.token_lifetime = lifetime).await;
    let ep = token_response(&app, "/oauth/access_token").await;
    assert_eq!(ep["expires_in"], 60);
    let now = jobline_core::Clock::now(&clock).timestamp();
    assert_eq!(ep["expires"], now + 60);
    let zuora = token_response(&app, "/oauth/token").await;
    assert_eq!(zuora["expires_in"], 59, "a second short, as Zuora says");
    let tokens = [ep["access_token"].as_str().unwrap(), zuora["access_token"].as_str().unwrap()];

    clock.advance(lifetime - Duration::from_secs(1));
    for token in tokens {
        for path in ["/pcm/jobs", "/objects/jobs"] {
            let status = app.authed(Method::GET, path, token).send().await.unwrap().status();
            assert_eq!(status, 200, "{path} a second before expiry");
        }
    }
    clock.advance(Duration::from_secs(1));
    for token in tokens {
        for path in ["/pcm/jobs", "/objects/jobs"] {
            let status = app.authed(Method::GET, path, token).send().await.unwrap().status();
            assert_eq!(status, 401, "{path} at expiry");
        }
    }
}

/// The token endpoint at `path`, asked with the bootstrap admin's credentials.
async fn token_response(app: &TestApp, path: &str) -> Value {
    let r = app.request_token(path, &app.admin.client.id.to_string(), &app.admin.secret).await;
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

/// A token that works is refused on the very next request once its client is revoked, on
/// both dialects, and the client can get no new one.
async fn a_revoked_clients_issued_token_is_refused_at_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let default = TenantId::parse("default").unwrap();
    let client = app.store.create_client(&default, Role::Admin, None).await.unwrap();
    let ep = app.ep_token(&client).await;
    let zuora = app.zuora_token(&client).await;
    for (token, path) in [(&ep, "/pcm/jobs"), (&zuora, "/objects/jobs")] {
        assert_eq!(app.authed(Method::GET, path, token).send().await.unwrap().status(), 200);
    }
    app.store.revoke_client(&client.client.id).await.unwrap();
    for (token, path) in [(&ep, "/pcm/jobs"), (&zuora, "/objects/jobs")] {
        assert_eq!(app.authed(Method::GET, path, token).send().await.unwrap().status(), 401);
    }
    let id = client.client.id.to_string();
    let again = app.request_token("/oauth/access_token", &id, &client.secret).await;
    assert_eq!(again.status(), 401, "a revoked client gets no new token");
    let admin = app.admin_token().await;
    let status = app.authed(Method::GET, "/pcm/jobs", &admin).send().await.unwrap().status();
    assert_eq!(status, 200, "other clients are untouched");
}

on_both_engines!(
    every_route_refuses_every_caller_it_should,
    a_configured_token_lifetime_expires_tokens,
    a_revoked_clients_issued_token_is_refused_at_once,
);

/// The table lists exactly the routes the dialect modules declare, so a new route cannot be
/// added without a row here. Reads the `.route(…)` calls of each dialect's `mod.rs`, and the
/// functions of the dialect that return a ready `MethodRouter` (PXM's `collection`, `record`).
#[test]
fn routes_match_the_dialect_modules() {
    let mut declared = BTreeSet::new();
    for (method, path) in route_calls("pxm") {
        declared.insert((method, normalise(&format!("/pcm{path}"))));
    }
    for (method, path) in route_calls("promotions") {
        for family in ["promotions", "rule-promotions"] {
            let path = path.replace("{p}", &format!("/v2/{family}"));
            declared.insert((method.clone(), normalise(&path)));
        }
    }
    for (method, path) in route_calls("zuora") {
        if path != "/oauth/token" {
            declared.insert((method, normalise(&format!("/objects{path}"))));
        }
    }
    let mut listed = BTreeSet::new();
    for route in ROUTES {
        for family in ["promotions", "rule-promotions"] {
            let path = route.path.replace("{family}", family);
            listed.insert((route.method.to_owned(), normalise(&path)));
        }
    }
    let missing: Vec<_> = declared.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&declared).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "not in the table: {missing:?}; not routes: {extra:?}"
    );
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `(METHOD, path)` of each `.route(path, …)` call in `jobline-http/src/{dialect}/mod.rs`; a
/// path given as the variable `p` (the promotions family prefix) reads as `{p}`, `{{x}}` as
/// `{x}`. The methods are those the call names (`get(…).post(…)`) or those of a `MethodRouter`
/// function of the dialect it calls (`c::record::<Product>()`).
fn route_calls(dialect: &str) -> Vec<(String, String)> {
    let dir = format!("{}/../jobline-http/src/{dialect}", env!("CARGO_MANIFEST_DIR"));
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let src = read(&format!("{dir}/mod.rs"));
    let mut routers = Vec::new();
    for file in rust_files(std::path::Path::new(&dir)) {
        routers.extend(method_routers(&read(&file)));
    }
    let mut calls = Vec::new();
    for (start, _) in src.match_indices(".route(") {
        let call = parenthesised(&src[start + ".route(".len()..]);
        let path = match call.trim_start().strip_prefix("p,") {
            Some(_) => "{p}".to_owned(),
            None => {
                call.split('"').nth(1).unwrap_or_default().replace("{{", "{").replace("}}", "}")
            }
        };
        let mut methods: Vec<&str> = METHODS.into_iter().filter(|m| calls_fn(call, m)).collect();
        for (name, theirs) in &routers {
            if call.contains(&format!("{name}::<")) || calls_fn(call, name) {
                methods.extend(theirs);
            }
        }
        calls.extend(methods.into_iter().map(|m| (m.to_uppercase(), path.clone())));
    }
    calls
}

/// The `.rs` files under `dir`.
fn rust_files(dir: &std::path::Path) -> Vec<String> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path.display().to_string());
        }
    }
    files
}

/// The functions of `src` that return a `MethodRouter`, with the methods their body routes.
fn method_routers(src: &str) -> Vec<(String, Vec<&'static str>)> {
    let mut routers = Vec::new();
    for (at, _) in src.match_indices("-> MethodRouter<AppState> {") {
        let Some(name) = src[..at].rsplit("fn ").next().and_then(|s| s.split(['<', '(']).next())
        else {
            continue;
        };
        let body = src[at..].split("\n}").next().unwrap_or_default();
        let methods = METHODS.into_iter().filter(|m| calls_fn(body, m)).collect();
        routers.push((name.trim().to_owned(), methods));
    }
    routers
}

/// Whether `code` calls the function `name` (`name(`, not `other_name(` or `name_x(`).
fn calls_fn(code: &str, name: &str) -> bool {
    code.match_indices(&format!("{name}("))
        .any(|(i, _)| !code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
}

/// `text` up to the parenthesis that closes the one just before it.
fn parenthesised(text: &str) -> &str {
    let mut depth = 1;
    let end = text
        .char_indices()
        .find(|&(_, c)| {
            depth += match c {
                '(' => 1,
                ')' => -1,
                _ => 0,
            };
            depth == 0
        })
        .map_or(text.len(), |(i, _)| i);
    &text[..end]
}

/// `path` with each `{name}` segment written `{}`, so placeholders compare by position.
fn normalise(path: &str) -> String {
    path.split('/')
        .map(|segment| if segment.starts_with('{') { "{}" } else { segment })
        .collect::<Vec<_>>()
        .join("/")
}
