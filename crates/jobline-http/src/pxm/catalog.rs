//! The PXM catalog endpoints a client needs to set up what jobs act on and to see their
//! results (`shared/spec/vendor-apis.md` A.13): products, hierarchies and nodes with their
//! product links, variations and options with product links, price books and prices; plus the
//! two job routes that act on one resource (hierarchy duplicate, child-product build).
//!
//! Handlers parse the request document, call one store function, and render; rules live in
//! `jobline_core::catalog` and the store, status codes in `ep::error`.

use super::catalog_dto as dto;
use super::dto::JobDocument;
use super::resource::{self, Document, Identifiers};
use crate::ep::auth::EpAdmin;
use crate::ep::error::EpError;
use crate::ep::params::{links_and_meta, ListQuery};
use crate::ep::EpJson;
use crate::ep::NoContent;
use crate::request_id::RequestId;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::Json;
use jobline_core::{
    kinds, parse_ep_filter, HierarchyId, HierarchyInput, NewJob, NodeId, NodeInput, PriceBookId,
    PriceBookInput, PriceId, PriceInput, ProductFilter, ProductId, ProductInput, ValidationError,
    VariationId, VariationInput, VariationOptionId, VariationOptionInput,
};
use jobline_store::{CatalogPage, NodeLevel, StoreError};
use serde_json::{json, Map, Value};

type Created = crate::ep::Created<Json<Value>>;

fn one(v: Value) -> Json<Value> {
    let mut doc = Map::new();
    doc.insert("data".into(), v);
    Json(Value::Object(doc))
}

fn created(v: Value) -> Created {
    crate::ep::Created(one(v))
}

/// Parses an id from the path; a malformed id is the same 404 as an unknown one.
fn id<T>(parse: fn(&str) -> Result<T, ValidationError>, s: &str, what: &str) -> Result<T, EpError> {
    parse(s).map_err(|_| EpError::not_found(what))
}

/// Store errors of a lookup, with the resource named in the 404.
fn missing(what: &'static str) -> impl Fn(StoreError) -> EpError {
    move |e| match e {
        StoreError::NotFound => EpError::not_found(what),
        other => other.into(),
    }
}

fn page<T>(
    headers: &HeaderMap,
    uri: &Uri,
    q: &ListQuery,
    page: &CatalogPage<T>,
    render: fn(&T) -> Value,
) -> Json<Value> {
    let (links, meta) = links_and_meta(headers, uri.path(), q, page.total);
    Json(
        json!({ "data": page.items.iter().map(render).collect::<Vec<_>>(), "links": links, "meta": meta }),
    )
}

// ---------------------------------------------------------------- products

/// Fills `base` with the attributes given; unknown attributes are kept as extras.
fn product_input(attrs: &Map<String, Value>, mut p: ProductInput) -> Result<ProductInput, EpError> {
    let mut extras = Map::new();
    for (k, v) in attrs {
        match k.as_str() {
            "name" => p.name = resource::string(k, v)?,
            "description" => p.description = resource::string(k, v)?,
            "slug" => p.slug = resource::string(k, v)?,
            "commodity_type" => p.commodity_type = resource::string(k, v)?,
            "status" => p.status = Some(resource::string(k, v)?),
            "sku" => p.sku = Some(resource::string(k, v)?),
            "upc_ean" => p.upc_ean = Some(resource::string(k, v)?),
            "mpn" | "manufacturer_part_num" => p.mpn = Some(resource::string(k, v)?),
            "external_ref" => p.external_ref = Some(resource::string(k, v)?),
            "tags" => p.tags = Some(resource::strings(k, v)?),
            "build_rules" => p.build_rules = Some(v.clone()),
            _ => {
                extras.insert(k.clone(), v.clone());
            }
        }
    }
    p.extras = Value::Object(extras);
    Ok(p)
}

/// `POST /pcm/products`.
pub async fn create_product(
    State(app): State<AppState>,
    caller: EpAdmin,
    EpJson(doc): EpJson<Document>,
) -> Result<Created, EpError> {
    let input = product_input(&doc.data.attributes, ProductInput::default())?;
    Ok(created(dto::product(&app.store.create_product(caller.tenant(), &input).await?)))
}

/// `GET /pcm/products` with `page[…]` and `filter` (the export filter operators, A.9).
pub async fn list_products(
    State(app): State<AppState>,
    caller: EpAdmin,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<Value>, EpError> {
    let q = ListQuery::parse(uri.query())?;
    let filter = match &q.raw_filter {
        Some(f) => parse_ep_filter(f).map_err(|_| EpError::BadFilter)?,
        None => ProductFilter::default(),
    };
    let p = app.store.list_products(caller.tenant(), &filter, q.offset, q.limit).await?;
    Ok(page(&headers, &uri, &q, &p, dto::product))
}

/// `GET /pcm/products/{id}`.
pub async fn get_product(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(pid): Path<String>,
) -> Result<Json<Value>, EpError> {
    let pid = id(ProductId::parse, &pid, "product")?;
    let p = app.store.get_product(caller.tenant(), pid).await.map_err(missing("product"))?;
    Ok(one(dto::product(&p)))
}

/// `PUT /pcm/products/{id}`: only the attributes given change.
pub async fn update_product(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(pid): Path<String>,
    EpJson(doc): EpJson<Document>,
) -> Result<Json<Value>, EpError> {
    let pid = id(ProductId::parse, &pid, "product")?;
    let current = app.store.get_product(caller.tenant(), pid).await.map_err(missing("product"))?;
    let mut base = ProductInput::from(&current);
    base.id = None;
    base.extras = Value::Object(Map::new());
    let input = product_input(&doc.data.attributes, base)?;
    let p =
        app.store.update_product(caller.tenant(), pid, &input).await.map_err(missing("product"))?;
    Ok(one(dto::product(&p)))
}

/// `DELETE /pcm/products/{id}` (its child products go with it).
pub async fn delete_product(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(pid): Path<String>,
) -> Result<NoContent, EpError> {
    let pid = id(ProductId::parse, &pid, "product")?;
    app.store.delete_product(caller.tenant(), pid).await.map_err(missing("product"))?;
    Ok(NoContent)
}

/// `GET /pcm/products/{id}/variations`.
pub async fn product_variations(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(pid): Path<String>,
) -> Result<Json<Value>, EpError> {
    let pid = id(ProductId::parse, &pid, "product")?;
    let vs = app
        .store
        .list_product_variations(caller.tenant(), pid)
        .await
        .map_err(missing("product"))?;
    Ok(Json(json!({ "data": vs.iter().map(dto::variation).collect::<Vec<_>>() })))
}

/// `POST /pcm/products/{id}/relationships/variations`: links variations to the product.
pub async fn link_variations(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(pid): Path<String>,
    EpJson(ids): EpJson<Identifiers>,
) -> Result<NoContent, EpError> {
    let pid = id(ProductId::parse, &pid, "product")?;
    for v in ids.ids()? {
        let v = id(VariationId::parse, &v, "variation")?;
        app.store
            .link_product_variation(caller.tenant(), pid, v)
            .await
            .map_err(missing("product or variation"))?;
    }
    Ok(NoContent)
}

/// `DELETE /pcm/products/{id}/relationships/variations`.
pub async fn unlink_variations(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(pid): Path<String>,
    EpJson(ids): EpJson<Identifiers>,
) -> Result<NoContent, EpError> {
    let pid = id(ProductId::parse, &pid, "product")?;
    for v in ids.ids()? {
        let v = id(VariationId::parse, &v, "variation")?;
        app.store
            .unlink_product_variation(caller.tenant(), pid, v)
            .await
            .map_err(missing("product or variation"))?;
    }
    Ok(NoContent)
}

/// `GET /pcm/products/{id}/nodes`: the nodes the product is linked to.
pub async fn product_nodes(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(pid): Path<String>,
) -> Result<Json<Value>, EpError> {
    let pid = id(ProductId::parse, &pid, "product")?;
    let nodes =
        app.store.list_product_nodes(caller.tenant(), pid).await.map_err(missing("product"))?;
    Ok(Json(json!({ "data": nodes.iter().map(dto::node).collect::<Vec<_>>() })))
}

fn job(
    caller: &EpAdmin,
    rid: &RequestId,
    kind: jobline_core::KindSpec,
    subject: String,
    payload: Value,
) -> NewJob {
    let tenant = caller.tenant().clone();
    let queue = kinds::pxm::queue(&tenant);
    NewJob::new(tenant, kind, queue, payload)
        .with_subject(subject)
        .with_origin(Some(rid.as_str().to_owned()), Some(caller.client_id()))
}

/// `POST /pcm/products/{id}/build`: a `child-products` job; no body (A.11).
pub async fn build_children(
    State(app): State<AppState>,
    caller: EpAdmin,
    rid: RequestId,
    Path(pid): Path<String>,
) -> Result<crate::ep::Created<Json<JobDocument>>, EpError> {
    let pid = id(ProductId::parse, &pid, "product")?;
    let product = app.store.get_product(caller.tenant(), pid).await.map_err(missing("product"))?;
    if product.parent_id.is_some() {
        return Err(EpError::invalid(
            "data.id",
            "child products cannot be built from a child product",
        ));
    }
    let payload = json!({ "product_id": pid.to_string() });
    let j = app
        .store
        .enqueue(job(&caller, &rid, kinds::pxm::CHILD_PRODUCTS, pid.to_string(), payload))
        .await?;
    Ok(crate::ep::Created(Json(JobDocument { data: super::jobs::render(&j) })))
}

// ---------------------------------------------------------------- hierarchies and nodes

fn hierarchy_input(
    attrs: &Map<String, Value>,
    mut h: HierarchyInput,
) -> Result<HierarchyInput, EpError> {
    let mut extras = Map::new();
    for (k, v) in attrs {
        match k.as_str() {
            "name" => h.name = resource::string(k, v)?,
            "description" => h.description = Some(resource::string(k, v)?),
            "slug" => h.slug = Some(resource::string(k, v)?),
            _ => {
                extras.insert(k.clone(), v.clone());
            }
        }
    }
    h.extras = Value::Object(extras);
    Ok(h)
}

/// `POST /pcm/hierarchies`.
pub async fn create_hierarchy(
    State(app): State<AppState>,
    caller: EpAdmin,
    EpJson(doc): EpJson<Document>,
) -> Result<Created, EpError> {
    let input = hierarchy_input(&doc.data.attributes, HierarchyInput::default())?;
    Ok(created(dto::hierarchy(&app.store.create_hierarchy(caller.tenant(), &input).await?)))
}

/// `GET /pcm/hierarchies`.
pub async fn list_hierarchies(
    State(app): State<AppState>,
    caller: EpAdmin,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<Value>, EpError> {
    let q = ListQuery::parse(uri.query())?;
    let p = app.store.list_hierarchies(caller.tenant(), q.offset, q.limit).await?;
    Ok(page(&headers, &uri, &q, &p, dto::hierarchy))
}

/// `GET /pcm/hierarchies/{id}`.
pub async fn get_hierarchy(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(hid): Path<String>,
) -> Result<Json<Value>, EpError> {
    let hid = id(HierarchyId::parse, &hid, "hierarchy")?;
    let h = app.store.get_hierarchy(caller.tenant(), hid).await.map_err(missing("hierarchy"))?;
    Ok(one(dto::hierarchy(&h)))
}

/// `PUT /pcm/hierarchies/{id}`.
pub async fn update_hierarchy(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(hid): Path<String>,
    EpJson(doc): EpJson<Document>,
) -> Result<Json<Value>, EpError> {
    let hid = id(HierarchyId::parse, &hid, "hierarchy")?;
    let current =
        app.store.get_hierarchy(caller.tenant(), hid).await.map_err(missing("hierarchy"))?;
    let mut base = HierarchyInput::from(&current);
    base.extras = Value::Object(Map::new());
    let input = hierarchy_input(&doc.data.attributes, base)?;
    let h = app
        .store
        .update_hierarchy(caller.tenant(), hid, &input)
        .await
        .map_err(missing("hierarchy"))?;
    Ok(one(dto::hierarchy(&h)))
}

/// `DELETE /pcm/hierarchies/{id}` (with its nodes).
pub async fn delete_hierarchy(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(hid): Path<String>,
) -> Result<NoContent, EpError> {
    let hid = id(HierarchyId::parse, &hid, "hierarchy")?;
    app.store.delete_hierarchy(caller.tenant(), hid).await.map_err(missing("hierarchy"))?;
    Ok(NoContent)
}

/// `POST /pcm/hierarchies/{id}/duplicate_job` (A.10): body
/// `{"data":{"type":"hierarchy","attributes":{"name"?,"description"?,"include_products"?}}}`,
/// no other attribute allowed.
pub async fn duplicate_hierarchy(
    State(app): State<AppState>,
    caller: EpAdmin,
    rid: RequestId,
    Path(hid): Path<String>,
    EpJson(doc): EpJson<Document>,
) -> Result<crate::ep::Created<Json<JobDocument>>, EpError> {
    let hid = id(HierarchyId::parse, &hid, "hierarchy")?;
    let mut payload = json!({ "hierarchy_id": hid.to_string(), "include_products": false });
    for (k, v) in &doc.data.attributes {
        match k.as_str() {
            "name" | "description" => payload[k] = resource::string(k, v)?.into(),
            "include_products" => payload[k] = resource::boolean(k, v)?.into(),
            other => {
                return Err(EpError::invalid(
                    format!("data.attributes.{other}"),
                    format!(
                        "unknown attribute {other:?}; allowed: name, description, include_products"
                    ),
                ))
            }
        }
    }
    if payload.get("name").and_then(Value::as_str).is_some_and(|n| n.chars().count() > 1000) {
        return Err(EpError::invalid(
            "data.attributes.name",
            "name must be at most 1000 characters",
        ));
    }
    app.store.get_hierarchy(caller.tenant(), hid).await.map_err(missing("hierarchy"))?;
    let j = app
        .store
        .enqueue(job(&caller, &rid, kinds::pxm::HIERARCHY_DUPLICATE, hid.to_string(), payload))
        .await?;
    Ok(crate::ep::Created(Json(JobDocument { data: super::jobs::render(&j) })))
}

fn node_input(
    attrs: &Map<String, Value>,
    meta: &Map<String, Value>,
    mut n: NodeInput,
) -> Result<NodeInput, EpError> {
    let mut extras = Map::new();
    for (k, v) in attrs {
        match k.as_str() {
            "name" => n.name = resource::string(k, v)?,
            "description" => n.description = Some(resource::string(k, v)?),
            "slug" => n.slug = Some(resource::string(k, v)?),
            _ => {
                extras.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(v) = meta.get("sort_order") {
        n.sort_order = resource::integer("sort_order", v)?;
    }
    n.extras = Value::Object(extras);
    Ok(n)
}

/// `POST /pcm/hierarchies/{id}/nodes` (the parent, if any, in `relationships.parent`).
pub async fn create_node(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(hid): Path<String>,
    EpJson(doc): EpJson<Document>,
) -> Result<Created, EpError> {
    let hid = id(HierarchyId::parse, &hid, "hierarchy")?;
    let parent = match resource::related_id(&doc.data.relationships, "parent") {
        Some(p) => Some(id(NodeId::parse, &p, "parent node")?),
        None => None,
    };
    let input = node_input(&doc.data.attributes, &doc.data.meta, NodeInput::default())?;
    let n = app
        .store
        .create_node(caller.tenant(), hid, parent, &input)
        .await
        .map_err(missing("hierarchy or parent node"))?;
    Ok(created(dto::node(&n)))
}

async fn list_nodes_at(
    app: &AppState,
    caller: &EpAdmin,
    hid: &str,
    level: NodeLevel,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Json<Value>, EpError> {
    let hid = id(HierarchyId::parse, hid, "hierarchy")?;
    let q = ListQuery::parse(uri.query())?;
    let p = app
        .store
        .list_nodes(caller.tenant(), hid, level, q.offset, q.limit)
        .await
        .map_err(missing("hierarchy"))?;
    Ok(page(headers, uri, &q, &p, dto::node))
}

/// `GET /pcm/hierarchies/{id}/nodes`: every node.
pub async fn list_nodes(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(hid): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<Value>, EpError> {
    list_nodes_at(&app, &caller, &hid, NodeLevel::All, &headers, &uri).await
}

/// `GET /pcm/hierarchies/{id}/children`: the top-level nodes.
pub async fn top_nodes(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(hid): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<Value>, EpError> {
    list_nodes_at(&app, &caller, &hid, NodeLevel::Top, &headers, &uri).await
}

/// `GET /pcm/hierarchies/{id}/nodes/{node}/children`.
pub async fn child_nodes(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path((hid, nid)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<Value>, EpError> {
    let nid = id(NodeId::parse, &nid, "node")?;
    list_nodes_at(&app, &caller, &hid, NodeLevel::ChildrenOf(nid), &headers, &uri).await
}

/// Loads a node and checks it belongs to the hierarchy of the path.
async fn load_node(
    app: &AppState,
    caller: &EpAdmin,
    hid: &str,
    nid: &str,
) -> Result<jobline_core::Node, EpError> {
    let hid = id(HierarchyId::parse, hid, "hierarchy")?;
    let nid = id(NodeId::parse, nid, "node")?;
    let n = app.store.get_node(caller.tenant(), nid).await.map_err(missing("node"))?;
    if n.hierarchy_id != hid {
        return Err(EpError::not_found("node"));
    }
    Ok(n)
}

/// `GET /pcm/hierarchies/{id}/nodes/{node}`.
pub async fn get_node(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path((hid, nid)): Path<(String, String)>,
) -> Result<Json<Value>, EpError> {
    Ok(one(dto::node(&load_node(&app, &caller, &hid, &nid).await?)))
}

/// `PUT /pcm/hierarchies/{id}/nodes/{node}`.
pub async fn update_node(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path((hid, nid)): Path<(String, String)>,
    EpJson(doc): EpJson<Document>,
) -> Result<Json<Value>, EpError> {
    let current = load_node(&app, &caller, &hid, &nid).await?;
    let mut base = NodeInput::from(&current);
    base.extras = Value::Object(Map::new());
    let input = node_input(&doc.data.attributes, &doc.data.meta, base)?;
    let n = app
        .store
        .update_node(caller.tenant(), current.id, &input)
        .await
        .map_err(missing("node"))?;
    Ok(one(dto::node(&n)))
}

/// `DELETE /pcm/hierarchies/{id}/nodes/{node}` (with its subtree).
pub async fn delete_node(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path((hid, nid)): Path<(String, String)>,
) -> Result<NoContent, EpError> {
    let n = load_node(&app, &caller, &hid, &nid).await?;
    app.store.delete_node(caller.tenant(), n.id).await.map_err(missing("node"))?;
    Ok(NoContent)
}

/// `GET /pcm/hierarchies/{id}/nodes/{node}/products`.
pub async fn node_products(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path((hid, nid)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<Value>, EpError> {
    let n = load_node(&app, &caller, &hid, &nid).await?;
    let q = ListQuery::parse(uri.query())?;
    let p = app.store.list_node_products(caller.tenant(), n.id, q.offset, q.limit).await?;
    Ok(page(&headers, &uri, &q, &p, dto::product))
}

/// `POST /pcm/hierarchies/{id}/nodes/{node}/relationships/products`.
pub async fn link_node_products(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path((hid, nid)): Path<(String, String)>,
    EpJson(ids): EpJson<Identifiers>,
) -> Result<NoContent, EpError> {
    let n = load_node(&app, &caller, &hid, &nid).await?;
    for p in ids.ids()? {
        let p = id(ProductId::parse, &p, "product")?;
        app.store.link_node_product(caller.tenant(), n.id, p).await.map_err(missing("product"))?;
    }
    Ok(NoContent)
}

/// `DELETE /pcm/hierarchies/{id}/nodes/{node}/relationships/products`.
pub async fn unlink_node_products(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path((hid, nid)): Path<(String, String)>,
    EpJson(ids): EpJson<Identifiers>,
) -> Result<NoContent, EpError> {
    let n = load_node(&app, &caller, &hid, &nid).await?;
    for p in ids.ids()? {
        let p = id(ProductId::parse, &p, "product")?;
        app.store
            .unlink_node_product(caller.tenant(), n.id, p)
            .await
            .map_err(missing("product"))?;
    }
    Ok(NoContent)
}

// ---------------------------------------------------------------- variations and options

fn variation_input(
    attrs: &Map<String, Value>,
    mut v: VariationInput,
) -> Result<VariationInput, EpError> {
    for (k, val) in attrs {
        match k.as_str() {
            "name" => v.name = resource::string(k, val)?,
            "sort_order" => v.sort_order = resource::integer(k, val)?,
            _ => {}
        }
    }
    Ok(v)
}

/// `POST /pcm/variations`.
pub async fn create_variation(
    State(app): State<AppState>,
    caller: EpAdmin,
    EpJson(doc): EpJson<Document>,
) -> Result<Created, EpError> {
    let input = variation_input(&doc.data.attributes, VariationInput::default())?;
    Ok(created(dto::variation(&app.store.create_variation(caller.tenant(), &input).await?)))
}

/// `GET /pcm/variations`.
pub async fn list_variations(
    State(app): State<AppState>,
    caller: EpAdmin,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<Value>, EpError> {
    let q = ListQuery::parse(uri.query())?;
    let p = app.store.list_variations(caller.tenant(), q.offset, q.limit).await?;
    Ok(page(&headers, &uri, &q, &p, dto::variation))
}

/// `GET /pcm/variations/{id}`.
pub async fn get_variation(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(vid): Path<String>,
) -> Result<Json<Value>, EpError> {
    let vid = id(VariationId::parse, &vid, "variation")?;
    let v = app.store.get_variation(caller.tenant(), vid).await.map_err(missing("variation"))?;
    Ok(one(dto::variation(&v)))
}

/// `PUT /pcm/variations/{id}`.
pub async fn update_variation(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(vid): Path<String>,
    EpJson(doc): EpJson<Document>,
) -> Result<Json<Value>, EpError> {
    let vid = id(VariationId::parse, &vid, "variation")?;
    let current =
        app.store.get_variation(caller.tenant(), vid).await.map_err(missing("variation"))?;
    let base = VariationInput { name: current.name.clone(), sort_order: current.sort_order };
    let input = variation_input(&doc.data.attributes, base)?;
    let v = app
        .store
        .update_variation(caller.tenant(), vid, &input)
        .await
        .map_err(missing("variation"))?;
    Ok(one(dto::variation(&v)))
}

/// `DELETE /pcm/variations/{id}`.
pub async fn delete_variation(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(vid): Path<String>,
) -> Result<NoContent, EpError> {
    let vid = id(VariationId::parse, &vid, "variation")?;
    app.store.delete_variation(caller.tenant(), vid).await.map_err(missing("variation"))?;
    Ok(NoContent)
}

fn option_input(
    attrs: &Map<String, Value>,
    mut o: VariationOptionInput,
) -> Result<VariationOptionInput, EpError> {
    for (k, v) in attrs {
        match k.as_str() {
            "name" => o.name = resource::string(k, v)?,
            "description" => o.description = Some(resource::string(k, v)?),
            "sort_order" => o.sort_order = resource::integer(k, v)?,
            _ => {}
        }
    }
    Ok(o)
}

/// `POST /pcm/variations/{id}/options`.
pub async fn create_option(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(vid): Path<String>,
    EpJson(doc): EpJson<Document>,
) -> Result<Created, EpError> {
    let vid = id(VariationId::parse, &vid, "variation")?;
    let input = option_input(&doc.data.attributes, VariationOptionInput::default())?;
    let o = app
        .store
        .create_variation_option(caller.tenant(), vid, &input)
        .await
        .map_err(missing("variation"))?;
    Ok(created(dto::option(&o)))
}

/// `GET /pcm/variations/{id}/options`.
pub async fn list_options(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(vid): Path<String>,
) -> Result<Json<Value>, EpError> {
    let vid = id(VariationId::parse, &vid, "variation")?;
    let v = app.store.get_variation(caller.tenant(), vid).await.map_err(missing("variation"))?;
    Ok(Json(json!({ "data": v.options.iter().map(dto::option).collect::<Vec<_>>() })))
}

async fn load_option(
    app: &AppState,
    caller: &EpAdmin,
    vid: &str,
    oid: &str,
) -> Result<jobline_core::VariationOption, EpError> {
    let vid = id(VariationId::parse, vid, "variation")?;
    let oid = id(VariationOptionId::parse, oid, "option")?;
    let o =
        app.store.get_variation_option(caller.tenant(), oid).await.map_err(missing("option"))?;
    if o.variation_id != vid {
        return Err(EpError::not_found("option"));
    }
    Ok(o)
}

/// `GET /pcm/variations/{id}/options/{option}`.
pub async fn get_option(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path((vid, oid)): Path<(String, String)>,
) -> Result<Json<Value>, EpError> {
    Ok(one(dto::option(&load_option(&app, &caller, &vid, &oid).await?)))
}

/// `PUT /pcm/variations/{id}/options/{option}`.
pub async fn update_option(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path((vid, oid)): Path<(String, String)>,
    EpJson(doc): EpJson<Document>,
) -> Result<Json<Value>, EpError> {
    let current = load_option(&app, &caller, &vid, &oid).await?;
    let base = VariationOptionInput {
        name: current.name.clone(),
        description: current.description.clone(),
        sort_order: current.sort_order,
    };
    let input = option_input(&doc.data.attributes, base)?;
    let o = app
        .store
        .update_variation_option(caller.tenant(), current.id, &input)
        .await
        .map_err(missing("option"))?;
    Ok(one(dto::option(&o)))
}

/// `DELETE /pcm/variations/{id}/options/{option}`.
pub async fn delete_option(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path((vid, oid)): Path<(String, String)>,
) -> Result<NoContent, EpError> {
    let o = load_option(&app, &caller, &vid, &oid).await?;
    app.store.delete_variation_option(caller.tenant(), o.id).await.map_err(missing("option"))?;
    Ok(NoContent)
}

// ---------------------------------------------------------------- price books and prices

fn pricebook_input(
    attrs: &Map<String, Value>,
    mut b: PriceBookInput,
) -> Result<PriceBookInput, EpError> {
    for (k, v) in attrs {
        match k.as_str() {
            "name" => b.name = resource::string(k, v)?,
            "description" => b.description = Some(resource::string(k, v)?),
            "external_ref" => b.external_ref = Some(resource::string(k, v)?),
            _ => {}
        }
    }
    Ok(b)
}

/// `POST /pcm/pricebooks`.
pub async fn create_pricebook(
    State(app): State<AppState>,
    caller: EpAdmin,
    EpJson(doc): EpJson<Document>,
) -> Result<Created, EpError> {
    let input = pricebook_input(&doc.data.attributes, PriceBookInput::default())?;
    Ok(created(dto::pricebook(&app.store.create_pricebook(caller.tenant(), &input).await?)))
}

/// `GET /pcm/pricebooks`.
pub async fn list_pricebooks(
    State(app): State<AppState>,
    caller: EpAdmin,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<Value>, EpError> {
    let q = ListQuery::parse(uri.query())?;
    let p = app.store.list_pricebooks(caller.tenant(), q.offset, q.limit).await?;
    Ok(page(&headers, &uri, &q, &p, dto::pricebook))
}

/// `GET /pcm/pricebooks/{id}`.
pub async fn get_pricebook(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(bid): Path<String>,
) -> Result<Json<Value>, EpError> {
    let bid = id(PriceBookId::parse, &bid, "price book")?;
    let b = app.store.get_pricebook(caller.tenant(), bid).await.map_err(missing("price book"))?;
    Ok(one(dto::pricebook(&b)))
}

/// `PUT /pcm/pricebooks/{id}`.
pub async fn update_pricebook(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(bid): Path<String>,
    EpJson(doc): EpJson<Document>,
) -> Result<Json<Value>, EpError> {
    let bid = id(PriceBookId::parse, &bid, "price book")?;
    let current =
        app.store.get_pricebook(caller.tenant(), bid).await.map_err(missing("price book"))?;
    let base = PriceBookInput {
        id: None,
        name: current.name.clone(),
        description: current.description.clone(),
        external_ref: current.external_ref.clone(),
    };
    let input = pricebook_input(&doc.data.attributes, base)?;
    let b = app
        .store
        .update_pricebook(caller.tenant(), bid, &input)
        .await
        .map_err(missing("price book"))?;
    Ok(one(dto::pricebook(&b)))
}

/// `DELETE /pcm/pricebooks/{id}` (with its prices).
pub async fn delete_pricebook(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(bid): Path<String>,
) -> Result<NoContent, EpError> {
    let bid = id(PriceBookId::parse, &bid, "price book")?;
    app.store.delete_pricebook(caller.tenant(), bid).await.map_err(missing("price book"))?;
    Ok(NoContent)
}

fn price_input(attrs: &Map<String, Value>, mut p: PriceInput) -> Result<PriceInput, EpError> {
    for (k, v) in attrs {
        match k.as_str() {
            "sku" => p.sku = resource::string(k, v)?,
            "external_ref" => p.external_ref = Some(resource::string(k, v)?),
            "currencies" => p.currencies = v.clone(),
            "sales" => p.sales = Some(v.clone()),
            "admin_attributes" => p.admin_attributes = Some(v.clone()),
            "shopper_attributes" => p.shopper_attributes = Some(v.clone()),
            _ => {}
        }
    }
    Ok(p)
}

/// `POST /pcm/pricebooks/{id}/prices`.
pub async fn create_price(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(bid): Path<String>,
    EpJson(doc): EpJson<Document>,
) -> Result<Created, EpError> {
    let bid = id(PriceBookId::parse, &bid, "price book")?;
    let input = price_input(&doc.data.attributes, PriceInput::default())?;
    let p = app
        .store
        .create_price(caller.tenant(), bid, &input)
        .await
        .map_err(missing("price book"))?;
    Ok(created(dto::price(&p)))
}

/// `GET /pcm/pricebooks/{id}/prices`.
pub async fn list_prices(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(bid): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<Value>, EpError> {
    let bid = id(PriceBookId::parse, &bid, "price book")?;
    let q = ListQuery::parse(uri.query())?;
    let p = app
        .store
        .list_prices(caller.tenant(), bid, q.offset, q.limit)
        .await
        .map_err(missing("price book"))?;
    Ok(page(&headers, &uri, &q, &p, dto::price))
}

async fn load_price(
    app: &AppState,
    caller: &EpAdmin,
    bid: &str,
    pid: &str,
) -> Result<jobline_core::Price, EpError> {
    let bid = id(PriceBookId::parse, bid, "price book")?;
    let pid = id(PriceId::parse, pid, "price")?;
    let p = app.store.get_price(caller.tenant(), pid).await.map_err(missing("price"))?;
    if p.pricebook_id != bid {
        return Err(EpError::not_found("price"));
    }
    Ok(p)
}

/// `GET /pcm/pricebooks/{id}/prices/{price}`.
pub async fn get_price(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path((bid, pid)): Path<(String, String)>,
) -> Result<Json<Value>, EpError> {
    Ok(one(dto::price(&load_price(&app, &caller, &bid, &pid).await?)))
}

/// `PUT /pcm/pricebooks/{id}/prices/{price}`.
pub async fn update_price(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path((bid, pid)): Path<(String, String)>,
    EpJson(doc): EpJson<Document>,
) -> Result<Json<Value>, EpError> {
    let current = load_price(&app, &caller, &bid, &pid).await?;
    let base = PriceInput {
        id: None,
        sku: current.sku.clone(),
        external_ref: current.external_ref.clone(),
        currencies: current.currencies.clone(),
        sales: current.sales.clone(),
        admin_attributes: current.admin_attributes.clone(),
        shopper_attributes: current.shopper_attributes.clone(),
    };
    let input = price_input(&doc.data.attributes, base)?;
    let p = app
        .store
        .update_price(caller.tenant(), current.id, &input)
        .await
        .map_err(missing("price"))?;
    Ok(one(dto::price(&p)))
}

/// `DELETE /pcm/pricebooks/{id}/prices/{price}`.
pub async fn delete_price(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path((bid, pid)): Path<(String, String)>,
) -> Result<NoContent, EpError> {
    let p = load_price(&app, &caller, &bid, &pid).await?;
    app.store.delete_price(caller.tenant(), p.id).await.map_err(missing("price"))?;
    Ok(NoContent)
}
