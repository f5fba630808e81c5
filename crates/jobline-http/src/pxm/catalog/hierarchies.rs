//! Hierarchies and their nodes: `/pcm/hierarchies…`, the nodes' product links, and the
//! hierarchy-duplicate job.

use super::{
    created, enqueue, find, id, load, missing, Collection, Created, Entity, Linked, Linking,
    Listed, PageRequest, Paged, Top,
};
use crate::ep::auth::EpAdmin;
use crate::ep::error::EpError;
use crate::ep::params::ListQuery;
use crate::ep::EpJson;
use crate::pxm::catalog_dto as dto;
use crate::pxm::dto::JobDocument;
use crate::pxm::resource::{self, Document, Resource};
use crate::request_id::RequestId;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::Json;
use jobline_core::{
    kinds, Hierarchy, HierarchyId, HierarchyInput, Node, NodeId, NodeInput, Product, ProductId,
    TenantId, ValidationError,
};
use jobline_store::{CatalogPage, NodeLevel, Store, StoreError};
use serde_json::{json, Map, Value};

/// The `name`, `description` and `slug` attributes given; the others are kept as extras.
fn named_input(
    attrs: &Map<String, Value>,
    name: &mut String,
    description: &mut Option<String>,
    slug: &mut Option<String>,
) -> Result<Value, EpError> {
    let mut extras = Map::new();
    for (k, v) in attrs {
        match k.as_str() {
            "name" => *name = resource::string(k, v)?,
            "description" => *description = Some(resource::string(k, v)?),
            "slug" => *slug = Some(resource::string(k, v)?),
            _ => {
                extras.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(Value::Object(extras))
}

impl Entity for Hierarchy {
    type Id = HierarchyId;
    type Parent = Top;
    type Input = HierarchyInput;
    const NAME: &'static str = "hierarchy";
    const PARSE: fn(&str) -> Result<HierarchyId, ValidationError> = HierarchyId::parse;

    fn parent(&self) {}

    fn render(&self) -> Value {
        dto::hierarchy(self)
    }

    /// The stored fields with no extras (the stored ones stay unless the request names them).
    fn current(&self) -> HierarchyInput {
        HierarchyInput { extras: Value::Object(Map::new()), ..HierarchyInput::from(self) }
    }

    fn input(data: &Resource, mut h: HierarchyInput) -> Result<HierarchyInput, EpError> {
        h.extras = named_input(&data.attributes, &mut h.name, &mut h.description, &mut h.slug)?;
        Ok(h)
    }

    async fn get(store: &Store, tenant: &TenantId, id: HierarchyId) -> Result<Self, StoreError> {
        store.get_hierarchy(tenant, id).await
    }

    async fn update(
        store: &Store,
        tenant: &TenantId,
        id: HierarchyId,
        change: impl FnOnce(&Self) -> Result<HierarchyInput, EpError> + Send,
    ) -> Result<Self, EpError> {
        store.update_hierarchy_with(tenant, id, change).await
    }

    /// With its nodes.
    async fn delete(store: &Store, tenant: &TenantId, id: HierarchyId) -> Result<(), StoreError> {
        store.delete_hierarchy(tenant, id).await
    }
}

impl Collection for Hierarchy {
    async fn create(
        store: &Store,
        tenant: &TenantId,
        (): (),
        input: &HierarchyInput,
    ) -> Result<Self, StoreError> {
        store.create_hierarchy(tenant, input).await
    }
}

impl Paged for Hierarchy {
    async fn list(
        store: &Store,
        tenant: &TenantId,
        (): (),
        q: &ListQuery,
    ) -> Result<CatalogPage<Self>, EpError> {
        Ok(store.list_hierarchies(tenant, q.offset, q.limit).await?)
    }
}

impl Entity for Node {
    type Id = NodeId;
    type Parent = Hierarchy;
    type Input = NodeInput;
    const NAME: &'static str = "node";
    const PARSE: fn(&str) -> Result<NodeId, ValidationError> = NodeId::parse;

    fn parent(&self) -> HierarchyId {
        self.hierarchy_id
    }

    fn render(&self) -> Value {
        dto::node(self)
    }

    fn current(&self) -> NodeInput {
        NodeInput { extras: Value::Object(Map::new()), ..NodeInput::from(self) }
    }

    /// `sort_order` comes in `meta`.
    fn input(data: &Resource, mut n: NodeInput) -> Result<NodeInput, EpError> {
        n.extras = named_input(&data.attributes, &mut n.name, &mut n.description, &mut n.slug)?;
        if let Some(v) = data.meta.get("sort_order") {
            n.sort_order = resource::integer("sort_order", v)?;
        }
        Ok(n)
    }

    async fn get(store: &Store, tenant: &TenantId, id: NodeId) -> Result<Self, StoreError> {
        store.get_node(tenant, id).await
    }

    async fn update(
        store: &Store,
        tenant: &TenantId,
        id: NodeId,
        change: impl FnOnce(&Self) -> Result<NodeInput, EpError> + Send,
    ) -> Result<Self, EpError> {
        store.update_node_with(tenant, id, change).await
    }

    /// With its subtree.
    async fn delete(store: &Store, tenant: &TenantId, id: NodeId) -> Result<(), StoreError> {
        store.delete_node(tenant, id).await
    }
}

impl Paged for Node {
    /// Every node of the hierarchy.
    async fn list(
        store: &Store,
        tenant: &TenantId,
        hierarchy: HierarchyId,
        q: &ListQuery,
    ) -> Result<CatalogPage<Self>, EpError> {
        Ok(store.list_nodes(tenant, hierarchy, NodeLevel::All, q.offset, q.limit).await?)
    }
}

/// `GET /pcm/products/{id}/nodes`: the nodes the product is linked to.
impl Listed for Node {
    type Owner = Product;

    async fn list_under(
        store: &Store,
        tenant: &TenantId,
        product: ProductId,
    ) -> Result<Vec<Self>, StoreError> {
        store.list_product_nodes(tenant, product).await
    }
}

/// `…/nodes/{node}/relationships/products`.
impl Linking for Node {
    type Other = Product;
    const MISSING: &'static str = "product";

    async fn set(
        store: &Store,
        tenant: &TenantId,
        (id, product): (NodeId, ProductId),
        to: Linked,
    ) -> Result<(), StoreError> {
        match to {
            Linked::Yes => store.link_node_product(tenant, id, product).await,
            Linked::No => store.unlink_node_product(tenant, id, product).await,
        }
    }
}

/// `POST /pcm/hierarchies/{id}/nodes` (the parent, if any, in `relationships.parent`).
#[utoipa::path(post, path = "/pcm/hierarchies/{id}/nodes", tag = "pxm", security(("bearer" = [])), params(("id" = String, Path, description = "the id")), request_body = Document, responses((status = 201, description = "the node", body = crate::openapi::EpOne), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
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
    let input = Node::input(&doc.data, NodeInput::default())?;
    let n = app
        .store
        .create_node(caller.tenant(), hid, parent, &input)
        .await
        .map_err(missing("hierarchy or parent node"))?;
    Ok(created(n.render()))
}

/// `GET /pcm/hierarchies/{id}/children` (the top-level nodes) and
/// `GET /pcm/hierarchies/{id}/nodes/{node}/children` (a node's children).
#[utoipa::path(get, path = "/pcm/hierarchies/{id}/children", tag = "pxm", security(("bearer" = [])), params(("id" = String, Path, description = "the id"), crate::openapi::EpPage), responses((status = 200, description = "a page of the hierarchy's top nodes", body = crate::openapi::EpPageDocument), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
pub async fn children(
    State(app): State<AppState>,
    caller: EpAdmin,
    req: PageRequest,
) -> Result<Json<Value>, EpError> {
    let (hid, nid) = (req.path.first(), req.path.get(1));
    let level = match nid {
        Some(nid) => NodeLevel::ChildrenOf(id(NodeId::parse, nid, "node")?),
        None => NodeLevel::Top,
    };
    let hid = id(HierarchyId::parse, hid.map_or("", String::as_str), "hierarchy")?;
    let q = req.query()?;
    let p = app
        .store
        .list_nodes(caller.tenant(), hid, level, q.offset, q.limit)
        .await
        .map_err(missing("hierarchy"))?;
    Ok(req.answer(&q, &p))
}

/// `GET /pcm/hierarchies/{id}/nodes/{node}/products`.
#[utoipa::path(get, path = "/pcm/hierarchies/{id}/nodes/{node}/products", tag = "pxm", security(("bearer" = [])), params(("id" = String, Path, description = "the id"), ("node" = String, Path, description = "the node"), crate::openapi::EpPage), responses((status = 200, description = "a page of the node's products", body = crate::openapi::EpPageDocument), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
pub async fn node_products(
    State(app): State<AppState>,
    caller: EpAdmin,
    req: PageRequest,
) -> Result<Json<Value>, EpError> {
    let node = load::<Node>(&app, &caller, &req.path).await?;
    let q = req.query()?;
    let p = app.store.list_node_products(caller.tenant(), node.id, q.offset, q.limit).await?;
    Ok(req.answer(&q, &p))
}

/// `POST /pcm/hierarchies/{id}/duplicate_job` (A.10): body
/// `{"data":{"type":"hierarchy","attributes":{"name"?,"description"?,"include_products"?}}}`,
/// no other attribute allowed.
#[utoipa::path(post, path = "/pcm/hierarchies/{id}/duplicate_job", tag = "pxm", security(("bearer" = [])), params(("id" = String, Path, description = "the id")), request_body = Document, responses((status = 201, description = "the duplicate job", body = JobDocument), (status = "4XX", description = "refused, in Elastic Path's error shape", body = crate::ep::error::ErrorDocument)))]
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
    find::<Hierarchy>(&app, &caller, ((), hid)).await?;
    let job = (kinds::pxm::HIERARCHY_DUPLICATE, hid.to_string());
    enqueue(&app, &caller, &rid, job, payload).await
}
