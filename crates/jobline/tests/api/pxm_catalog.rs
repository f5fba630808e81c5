//! The PXM catalog endpoints on both engines: products, hierarchies and nodes, variations and
//! options, price books and prices, and the two per-resource job routes.

use crate::helpers::TestApp;
use jobline_core::{Role, TenantId};
use jobline_testkit::{on_both_engines, Engine};
use reqwest::Method;
use serde_json::{json, Value};

/// The path and query of an absolute link, to follow it on the test server.
fn path_of(link: &Value) -> String {
    let link = link.as_str().unwrap_or_else(|| panic!("not a link: {link}"));
    let after_scheme = link.split_once("://").map_or(link, |(_, rest)| rest);
    after_scheme[after_scheme.find('/').unwrap_or(after_scheme.len())..].to_owned()
}

struct Api<'a> {
    app: &'a TestApp,
    token: String,
}

impl Api<'_> {
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.app.authed(method, path, &self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
    }

    async fn ok(&self, method: Method, path: &str, body: Option<Value>, want: u16) -> Value {
        let (status, body) = self.send(method, path, body).await;
        assert_eq!(status, want, "{path}: {body}");
        body
    }

    async fn create(&self, path: &str, kind: &str, attributes: Value) -> String {
        let body = json!({"data": {"type": kind, "attributes": attributes}});
        let doc = self.ok(Method::POST, path, Some(body), 201).await;
        doc["data"]["id"].as_str().unwrap().to_owned()
    }
}

fn shirt(sku: &str, slug: &str) -> Value {
    json!({"name": "Shirt", "description": "A shirt", "slug": slug, "sku": sku,
           "status": "live", "commodity_type": "physical", "tags": ["cotton"],
           "shopper_attributes": {"colour": "red"}})
}

async fn products_crud_uniqueness_and_filters(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let api = Api { app: &app, token: app.admin_token().await };
    let id = api.create("/pcm/products", "product", shirt("s1", "shirt-1")).await;
    let p = api.ok(Method::GET, &format!("/pcm/products/{id}"), None, 200).await;
    assert_eq!(p["data"]["type"], "product");
    assert_eq!(p["data"]["attributes"]["sku"], "s1");
    assert_eq!(p["data"]["attributes"]["status"], "live");
    assert_eq!(p["data"]["attributes"]["shopper_attributes"]["colour"], "red");

    // Unique sku and slug; bad values named.
    let dup = json!({"data": {"type": "product", "attributes": shirt("s1", "other")}});
    let (status, body) = api.send(Method::POST, "/pcm/products", Some(dup)).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["errors"][0]["status"], "409");
    let bad = json!({"data": {"type": "product", "attributes": shirt("s2", "not a slug")}});
    let (status, body) = api.send(Method::POST, "/pcm/products", Some(bad)).await;
    assert_eq!(status, 422, "{body}");
    let wrong_type = json!({"data": {"type": "product", "attributes": {"name": 5}}});
    let (status, body) = api.send(Method::POST, "/pcm/products", Some(wrong_type)).await;
    assert_eq!((status, body["errors"][0]["source"].as_str()), (422, Some("data.attributes.name")));

    // Malformed JSON, a wrong content type, an oversized body: Elastic Path errors, never 500.
    let raw = |body: Vec<u8>, ct: &str| {
        app.authed(Method::POST, "/pcm/products", &api.token)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    for (body, ct, want) in [
        (b"{\"data\": ".to_vec(), "application/json", 400),
        (b"{}".to_vec(), "text/plain", 415),
        (vec![b' '; 3 * 1024 * 1024], "application/json", 413),
    ] {
        let r = raw(body, ct).await.unwrap();
        assert_eq!(r.status().as_u16(), want);
        if want == 413 {
            assert_eq!(r.headers()["connection"], "close", "a 413 ends its connection");
        }
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["errors"][0]["status"], want.to_string());
    }

    // Partial update keeps what was not given.
    let upd = json!({"data": {"type": "product", "attributes": {"name": "Tee"}}});
    let p = api.ok(Method::PUT, &format!("/pcm/products/{id}"), Some(upd), 200).await;
    assert_eq!(
        (p["data"]["attributes"]["name"].as_str(), p["data"]["attributes"]["sku"].as_str()),
        (Some("Tee"), Some("s1"))
    );

    api.create("/pcm/products", "product", shirt("s2", "shirt-2")).await;
    let all = api.ok(Method::GET, "/pcm/products?page[limit]=1", None, 200).await;
    assert_eq!(all["meta"]["results"]["total"], 2);
    assert_eq!(all["data"].as_array().unwrap().len(), 1);
    // The page's links work when followed (they keep the `/pcm` prefix).
    let next = api.ok(Method::GET, &path_of(&all["links"]["next"]), None, 200).await;
    assert_eq!(next["data"].as_array().unwrap().len(), 1);
    assert_ne!(next["data"][0]["id"], all["data"][0]["id"]);
    let f = api.ok(Method::GET, "/pcm/products?filter=eq(sku,s2)", None, 200).await;
    assert_eq!(f["meta"]["results"]["total"], 1);
    let (status, _) = api.send(Method::GET, "/pcm/products?filter=eq(colour,red)", None).await;
    assert_eq!(status, 400);

    // Another store sees nothing of it.
    let other =
        app.store.create_client(&TenantId::parse("s-2").unwrap(), Role::Admin, None).await.unwrap();
    let other = Api { app: &app, token: app.ep_token(&other).await };
    assert_eq!(other.send(Method::GET, &format!("/pcm/products/{id}"), None).await.0, 404);

    api.ok(Method::DELETE, &format!("/pcm/products/{id}"), None, 204).await;
    assert_eq!(api.send(Method::GET, &format!("/pcm/products/{id}"), None).await.0, 404);
}

async fn hierarchies_nodes_links_and_duplicate_job(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let api = Api { app: &app, token: app.admin_token().await };
    let product = api.create("/pcm/products", "product", shirt("s1", "shirt-1")).await;
    let h = api
        .create("/pcm/hierarchies", "hierarchy", json!({"name": "Clothes", "slug": "clothes"}))
        .await;
    let nodes = format!("/pcm/hierarchies/{h}/nodes");
    let top = api.create(&nodes, "node", json!({"name": "Men", "slug": "men"})).await;
    let body = json!({"data": {"type": "node", "attributes": {"name": "Shirts"},
        "relationships": {"parent": {"data": {"type": "node", "id": top}}}}});
    let child = api.ok(Method::POST, &nodes, Some(body), 201).await;
    let child = child["data"]["id"].as_str().unwrap().to_owned();
    let page = api.ok(Method::GET, "/pcm/hierarchies?page[limit]=1", None, 200).await;
    api.ok(Method::GET, &path_of(&page["links"]["current"]), None, 200).await;
    let page = api.ok(Method::GET, &format!("{nodes}?page[limit]=1"), None, 200).await;
    api.ok(Method::GET, &path_of(&page["links"]["first"]), None, 200).await;
    let kids = api.ok(Method::GET, &format!("{nodes}/{top}/children"), None, 200).await;
    assert_eq!(kids["data"][0]["id"], child.as_str());
    let tops = api.ok(Method::GET, &format!("/pcm/hierarchies/{h}/children"), None, 200).await;
    assert_eq!(tops["meta"]["results"]["total"], 1);

    let link = json!({"data": [{"type": "product", "id": product}]});
    api.ok(Method::POST, &format!("{nodes}/{child}/relationships/products"), Some(link), 204).await;
    let ps = api.ok(Method::GET, &format!("{nodes}/{child}/products"), None, 200).await;
    assert_eq!(ps["data"][0]["id"], product.as_str());

    let dup = json!({"data": {"type": "hierarchy", "attributes": {"name": "Copy", "include_products": true}}});
    let job =
        api.ok(Method::POST, &format!("/pcm/hierarchies/{h}/duplicate_job"), Some(dup), 201).await;
    assert_eq!(job["data"]["type"], "pim-job");
    assert_eq!(job["data"]["attributes"]["type"], "hierarchy-duplicate");
    let extra = json!({"data": {"type": "hierarchy", "attributes": {"slug": "x"}}});
    let (status, _) =
        api.send(Method::POST, &format!("/pcm/hierarchies/{h}/duplicate_job"), Some(extra)).await;
    assert_eq!(status, 422, "only name, description and include_products are allowed");
    let missing = format!("/pcm/hierarchies/{}/duplicate_job", jobline_core::HierarchyId::new());
    let (status, _) = api
        .send(
            Method::POST,
            &missing,
            Some(json!({"data": {"type": "hierarchy", "attributes": {}}})),
        )
        .await;
    assert_eq!(status, 404);

    api.ok(Method::DELETE, &format!("/pcm/hierarchies/{h}"), None, 204).await;
    assert_eq!(api.send(Method::GET, &format!("{nodes}/{top}"), None).await.0, 404);
}

async fn variations_options_build_job_and_price_books(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let api = Api { app: &app, token: app.admin_token().await };
    let product = api.create("/pcm/products", "product", shirt("s1", "shirt-1")).await;
    let size = api.create("/pcm/variations", "product-variation", json!({"name": "Size"})).await;
    for name in ["Small", "Large"] {
        api.create(
            &format!("/pcm/variations/{size}/options"),
            "product-variation-option",
            json!({"name": name, "description": name}),
        )
        .await;
    }
    let v = api.ok(Method::GET, &format!("/pcm/variations/{size}"), None, 200).await;
    assert_eq!(v["data"]["meta"]["options"].as_array().unwrap().len(), 2);
    let link = json!({"data": [{"type": "product-variation", "id": size}]});
    api.ok(
        Method::POST,
        &format!("/pcm/products/{product}/relationships/variations"),
        Some(link),
        204,
    )
    .await;
    let pv = api.ok(Method::GET, &format!("/pcm/products/{product}/variations"), None, 200).await;
    assert_eq!(pv["data"][0]["id"], size.as_str());

    let job = api.ok(Method::POST, &format!("/pcm/products/{product}/build"), None, 201).await;
    assert_eq!(job["data"]["attributes"]["type"], "child-products");
    let missing = format!("/pcm/products/{}/build", jobline_core::ProductId::new());
    assert_eq!(api.send(Method::POST, &missing, None).await.0, 404);

    let book = api
        .create("/pcm/pricebooks", "pricebook", json!({"name": "Retail", "external_ref": "retail"}))
        .await;
    let price = api
        .create(
            &format!("/pcm/pricebooks/{book}/prices"),
            "product-price",
            json!({"sku": "s1", "currencies": {"USD": {"amount": 1000, "includes_tax": false}}}),
        )
        .await;
    let p = api.ok(Method::GET, &format!("/pcm/pricebooks/{book}/prices/{price}"), None, 200).await;
    assert_eq!(p["data"]["attributes"]["currencies"]["USD"]["amount"], 1000);
    let dup = json!({"data": {"type": "pricebook", "attributes": {"name": "Retail"}}});
    assert_eq!(api.send(Method::POST, "/pcm/pricebooks", Some(dup)).await.0, 409);
    let list = api.ok(Method::GET, &format!("/pcm/pricebooks/{book}/prices"), None, 200).await;
    assert_eq!(list["meta"]["results"]["total"], 1);
}

on_both_engines!(
    products_crud_uniqueness_and_filters,
    hierarchies_nodes_links_and_duplicate_job,
    variations_options_build_job_and_price_books,
);
