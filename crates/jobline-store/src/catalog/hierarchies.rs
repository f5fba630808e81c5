//! Hierarchies and their trees of nodes, the nodes' product links, and the fenced duplication
//! of a whole hierarchy.

use super::products::ProductRow;
use super::{
    all, check, corrupt, delete, edit, find, finish, get, must_exist, page, page_of_tenant,
    parse_id, replace, CatalogPage, Edit, Linked, Links, Owned, Table,
};
use crate::checkpoint::{open_once, settle_once};
use crate::db::{Queries, Sql, Tx};
use crate::jobs::BATCH_ROWS;
use crate::rows::parse_json;
use crate::{Fence, Store, StoreError};
use jobline_core::catalog::{
    merge_extras, merge_text, new_extras, Hierarchy, HierarchyId, HierarchyInput, Node, NodeId,
    NodeInput, Product, ProductId,
};
use jobline_core::clock::from_millis;
use jobline_core::TenantId;
use std::collections::HashMap;

/// The request of a hierarchy duplication (vendor-apis.md A.10).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HierarchyCopy {
    /// The copy's name; `None` keeps the source's name.
    pub name: Option<String>,
    /// The copy's description; `None` keeps the source's.
    pub description: Option<String>,
    /// Whether the nodes' product links are copied too (EP's `include_products`, default
    /// false).
    pub include_products: bool,
}

/// Which nodes of a hierarchy to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeLevel {
    /// Every node of the hierarchy.
    All,
    /// The top-level nodes (no parent).
    Top,
    /// The direct children of this node.
    ChildrenOf(NodeId),
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct HierarchyRow {
    id: String,
    tenant_id: String,
    name: String,
    description: Option<String>,
    slug: Option<String>,
    extras: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<HierarchyRow> for Hierarchy {
    type Error = StoreError;

    fn try_from(r: HierarchyRow) -> Result<Self, StoreError> {
        Ok(Hierarchy {
            id: HierarchyId::parse(&r.id).map_err(corrupt)?,
            tenant: TenantId::parse(&r.tenant_id).map_err(corrupt)?,
            name: r.name,
            description: r.description,
            slug: r.slug,
            extras: parse_json(&r.extras)?,
            created_at: from_millis(r.created_at),
            updated_at: from_millis(r.updated_at),
        })
    }
}

impl Owned for HierarchyRow {
    type Record = Hierarchy;
    type Id = HierarchyId;
    const TABLE: Table = Table {
        name: "hierarchies",
        alias: "h",
        columns: "h.id, h.tenant_id, h.name, h.description, h.slug, h.extras, h.created_at, \
            h.updated_at",
    };
}

impl Edit for HierarchyRow {
    type Input = HierarchyInput;

    fn check(input: &HierarchyInput, _: HierarchyId) -> Result<(), StoreError> {
        check(input.validate())
    }

    async fn write(
        tx: &mut Tx,
        tenant: &TenantId,
        current: &Hierarchy,
        input: &HierarchyInput,
        now: i64,
    ) -> Result<(), StoreError> {
        let sql = Sql::new(
            "UPDATE hierarchies SET name = $1, description = $2, slug = $3, extras = $4, \
             updated_at = $5 WHERE id = $6 AND tenant_id = $7",
        );
        let sql = sql
            .bind(input.name.as_str())
            .bind(merge_text(&input.description, current.description.as_ref()))
            .bind(merge_text(&input.slug, current.slug.as_ref()))
            .bind(merge_extras(&current.extras, &input.extras).to_string());
        tx.execute(sql.bind(now).bind(current.id.to_string()).bind(tenant.as_str())).await?;
        Ok(())
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct NodeRow {
    id: String,
    tenant_id: String,
    hierarchy_id: String,
    parent_id: Option<String>,
    name: String,
    description: Option<String>,
    slug: Option<String>,
    sort_order: Option<i64>,
    extras: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<NodeRow> for Node {
    type Error = StoreError;

    fn try_from(r: NodeRow) -> Result<Self, StoreError> {
        Ok(Node {
            id: NodeId::parse(&r.id).map_err(corrupt)?,
            tenant: TenantId::parse(&r.tenant_id).map_err(corrupt)?,
            hierarchy_id: HierarchyId::parse(&r.hierarchy_id).map_err(corrupt)?,
            parent_id: parse_id(r.parent_id.as_deref(), NodeId::parse)?,
            name: r.name,
            description: r.description,
            slug: r.slug,
            sort_order: r.sort_order,
            extras: parse_json(&r.extras)?,
            created_at: from_millis(r.created_at),
            updated_at: from_millis(r.updated_at),
        })
    }
}

impl Owned for NodeRow {
    type Record = Node;
    type Id = NodeId;
    const TABLE: Table = Table {
        name: "nodes",
        alias: "n",
        columns: "n.id, n.tenant_id, n.hierarchy_id, n.parent_id, n.name, n.description, \
            n.slug, n.sort_order, n.extras, n.created_at, n.updated_at",
    };
}

impl Edit for NodeRow {
    type Input = NodeInput;

    fn check(input: &NodeInput, _: NodeId) -> Result<(), StoreError> {
        check(input.validate())
    }

    /// Where the node sits does not change.
    async fn write(
        tx: &mut Tx,
        tenant: &TenantId,
        current: &Node,
        input: &NodeInput,
        now: i64,
    ) -> Result<(), StoreError> {
        let sql = Sql::new(
            "UPDATE nodes SET name = $1, description = $2, slug = $3, sort_order = $4, \
             extras = $5, updated_at = $6 WHERE id = $7 AND tenant_id = $8",
        )
        .bind(input.name.as_str())
        .bind(merge_text(&input.description, current.description.as_ref()))
        .bind(merge_text(&input.slug, current.slug.as_ref()))
        .bind(input.sort_order.or(current.sort_order))
        .bind(merge_extras(&current.extras, &input.extras).to_string())
        .bind(now);
        tx.execute(sql.bind(current.id.to_string()).bind(tenant.as_str())).await?;
        Ok(())
    }
}

/// Which products are in which nodes.
const NODE_PRODUCTS: Links<NodeRow, ProductRow> =
    Links::new("node_products", "node_id", "product_id");

/// The stored fields of a new hierarchy.
struct NewHierarchy<'a> {
    name: &'a str,
    description: Option<String>,
    slug: Option<String>,
    extras: String,
}

async fn insert_hierarchy(
    tx: &mut Tx,
    tenant: &TenantId,
    id: HierarchyId,
    h: NewHierarchy<'_>,
    now: i64,
) -> Result<(), StoreError> {
    let sql = Sql::new(
        "INSERT INTO hierarchies (id, tenant_id, name, description, slug, extras, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    );
    let sql = sql.bind(id.to_string()).bind(tenant.as_str()).bind(h.name);
    tx.execute(sql.bind(h.description).bind(h.slug).bind(h.extras).bind(now)).await?;
    Ok(())
}

/// The stored fields of a new node of a hierarchy.
struct NewNode<'a> {
    id: NodeId,
    parent: Option<NodeId>,
    name: &'a str,
    description: Option<String>,
    slug: Option<String>,
    sort_order: Option<i64>,
    extras: String,
}

/// Inserts nodes of `hierarchy`, parents before their children.
async fn insert_nodes(
    tx: &mut Tx,
    tenant: &TenantId,
    hierarchy: HierarchyId,
    nodes: &[NewNode<'_>],
    now: i64,
) -> Result<(), StoreError> {
    let hierarchy = hierarchy.to_string();
    for chunk in nodes.chunks(BATCH_ROWS) {
        let mut sql = Sql::new(
            "INSERT INTO nodes (id, tenant_id, hierarchy_id, parent_id, name, description, slug, \
             sort_order, extras, created_at, updated_at) ",
        );
        sql.push_values(chunk, |row, n| {
            row.bind(n.id.to_string())
                .bind(tenant.as_str())
                .bind(hierarchy.as_str())
                .bind(n.parent.map(|p| p.to_string()))
                .bind(n.name)
                .bind(n.description.as_deref())
                .bind(n.slug.as_deref())
                .bind(n.sort_order)
                .bind(n.extras.as_str())
                .bind(now)
                .bind(now);
        });
        tx.execute(sql).await?;
    }
    Ok(())
}

/// The source's nodes as new nodes with new ids, parents before their children, so every
/// row's parent exists when it is inserted; the new ids are time ordered in the same order, so
/// the copy lists alike. Also returns the new id of each source node.
fn copy_tree(
    source: HierarchyId,
    nodes: &[Node],
) -> Result<(Vec<NewNode<'_>>, HashMap<NodeId, NodeId>), StoreError> {
    let mut new_ids: HashMap<NodeId, NodeId> = HashMap::new();
    let mut ordered = Vec::with_capacity(nodes.len());
    let mut pending: Vec<&Node> = nodes.iter().collect();
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|n| {
            let ready = n.parent_id.is_none_or(|p| new_ids.contains_key(&p));
            if ready {
                let id = NodeId::new();
                new_ids.insert(n.id, id);
                ordered.push(NewNode {
                    id,
                    parent: n.parent_id.map(|p| new_ids[&p]),
                    name: &n.name,
                    description: n.description.clone(),
                    slug: n.slug.clone(),
                    sort_order: n.sort_order,
                    extras: n.extras.to_string(),
                });
            }
            !ready
        });
        if pending.len() == before {
            return Err(corrupt(format!("nodes of hierarchy {source} form a cycle")));
        }
    }
    Ok((ordered, new_ids))
}

/// Copies the product links of the source's nodes to their copies (`new_ids`).
async fn copy_links(
    tx: &mut Tx,
    tenant: &TenantId,
    source: HierarchyId,
    new_ids: &HashMap<NodeId, NodeId>,
    now: i64,
) -> Result<(), StoreError> {
    let links: Vec<(String, String)> = tx
        .fetch_all(
            Sql::new(
                "SELECT np.node_id, np.product_id FROM node_products np \
                 JOIN nodes n ON n.id = np.node_id WHERE n.hierarchy_id = $1 \
                 ORDER BY np.node_id, np.product_id",
            )
            .bind(source.to_string()),
        )
        .await?;
    let links = links
        .iter()
        .map(|(node, product)| Ok((new_ids[&NodeId::parse(node).map_err(corrupt)?], product)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    for chunk in links.chunks(BATCH_ROWS) {
        let mut sql =
            Sql::new("INSERT INTO node_products (node_id, product_id, tenant_id, created_at) ");
        sql.push_values(chunk, |row, (node, product)| {
            row.bind(node.to_string()).bind(product.as_str()).bind(tenant.as_str()).bind(now);
        });
        tx.execute(sql).await?;
    }
    Ok(())
}

impl Store {
    /// Creates a hierarchy of `tenant`.
    ///
    /// Errors: `Invalid`.
    pub async fn create_hierarchy(
        &self,
        tenant: &TenantId,
        input: &HierarchyInput,
    ) -> Result<Hierarchy, StoreError> {
        check(input.validate())?;
        let id = HierarchyId::new();
        let h = NewHierarchy {
            name: &input.name,
            description: merge_text(&input.description, None),
            slug: merge_text(&input.slug, None),
            extras: new_extras(&input.extras).to_string(),
        };
        let mut tx = self.begin().await?;
        insert_hierarchy(&mut tx, tenant, id, h, self.now_ms()).await?;
        finish::<HierarchyRow>(tx, tenant, id).await
    }

    /// One hierarchy of `tenant`.
    pub async fn get_hierarchy(
        &self,
        tenant: &TenantId,
        id: HierarchyId,
    ) -> Result<Hierarchy, StoreError> {
        get::<HierarchyRow>(&mut self.read().await?, tenant, id).await
    }

    /// A page of `tenant`'s hierarchies, in creation order, with the total.
    pub async fn list_hierarchies(
        &self,
        tenant: &TenantId,
        offset: u64,
        limit: u64,
    ) -> Result<CatalogPage<Hierarchy>, StoreError> {
        page_of_tenant::<HierarchyRow>(self, tenant, offset, limit).await
    }

    /// Updates hierarchy `id` of `tenant` (`None` fields keep their value, `extras` merge).
    ///
    /// Errors: `NotFound`, `Invalid`.
    pub async fn update_hierarchy(
        &self,
        tenant: &TenantId,
        id: HierarchyId,
        input: &HierarchyInput,
    ) -> Result<Hierarchy, StoreError> {
        replace::<HierarchyRow>(self, tenant, id, input).await
    }

    /// Updates hierarchy `id` of `tenant` from the input `change` makes of it as stored, in one
    /// transaction (see [`Store::update_product_with`]).
    pub async fn update_hierarchy_with<E: From<StoreError>>(
        &self,
        tenant: &TenantId,
        id: HierarchyId,
        change: impl FnOnce(&Hierarchy) -> Result<HierarchyInput, E> + Send,
    ) -> Result<Hierarchy, E> {
        edit::<HierarchyRow, E>(self, tenant, id, change).await
    }

    /// Deletes hierarchy `id` of `tenant` with all its nodes and their product links (the
    /// products stay).
    pub async fn delete_hierarchy(
        &self,
        tenant: &TenantId,
        id: HierarchyId,
    ) -> Result<(), StoreError> {
        delete::<HierarchyRow>(self, tenant, id).await
    }

    /// Creates a node in hierarchy `hierarchy` of `tenant`, at the top or under `parent`
    /// (which must be a node of the same hierarchy).
    ///
    /// Errors: `NotFound` (hierarchy or parent), `Invalid`.
    pub async fn create_node(
        &self,
        tenant: &TenantId,
        hierarchy: HierarchyId,
        parent: Option<NodeId>,
        input: &NodeInput,
    ) -> Result<Node, StoreError> {
        check(input.validate())?;
        let id = NodeId::new();
        let node = NewNode {
            id,
            parent,
            name: &input.name,
            description: merge_text(&input.description, None),
            slug: merge_text(&input.slug, None),
            sort_order: input.sort_order,
            extras: new_extras(&input.extras).to_string(),
        };
        let mut tx = self.begin().await?;
        must_exist::<HierarchyRow>(&mut tx, tenant, hierarchy).await?;
        if let Some(parent) = parent {
            let keys = [
                ("id", &*parent.to_string()),
                ("tenant_id", tenant.as_str()),
                ("hierarchy_id", &*hierarchy.to_string()),
            ];
            find::<NodeRow>(&mut tx, &keys).await?.ok_or(StoreError::NotFound)?;
        }
        insert_nodes(&mut tx, tenant, hierarchy, &[node], self.now_ms()).await?;
        finish::<NodeRow>(tx, tenant, id).await
    }

    /// One node of `tenant`.
    pub async fn get_node(&self, tenant: &TenantId, id: NodeId) -> Result<Node, StoreError> {
        get::<NodeRow>(&mut self.read().await?, tenant, id).await
    }

    /// A page of the nodes of hierarchy `hierarchy` at `level`, in creation order, with the
    /// total.
    ///
    /// Errors: `NotFound` (the hierarchy is not `tenant`'s).
    pub async fn list_nodes(
        &self,
        tenant: &TenantId,
        hierarchy: HierarchyId,
        level: NodeLevel,
        offset: u64,
        limit: u64,
    ) -> Result<CatalogPage<Node>, StoreError> {
        let mut db = self.read().await?;
        must_exist::<HierarchyRow>(&mut db, tenant, hierarchy).await?;
        let hierarchy = hierarchy.to_string();
        let parent = match level {
            NodeLevel::ChildrenOf(node) => Some(node.to_string()),
            NodeLevel::All | NodeLevel::Top => None,
        };
        let keys = [("hierarchy_id", hierarchy.as_str()), ("tenant_id", tenant.as_str())];
        page::<NodeRow>(
            &mut db,
            |sql| {
                NodeRow::TABLE.push_keys(sql, &keys);
                match (level, &parent) {
                    (NodeLevel::Top, _) => {
                        sql.push(" AND n.parent_id IS NULL");
                    }
                    (_, Some(parent)) => {
                        sql.push(" AND n.parent_id = ").push_bind(parent.as_str());
                    }
                    _ => {}
                }
            },
            offset,
            limit,
        )
        .await
    }

    /// Updates node `id` of `tenant` (`None` fields keep their value, `extras` merge). Where
    /// the node sits does not change.
    ///
    /// Errors: `NotFound`, `Invalid`.
    pub async fn update_node(
        &self,
        tenant: &TenantId,
        id: NodeId,
        input: &NodeInput,
    ) -> Result<Node, StoreError> {
        replace::<NodeRow>(self, tenant, id, input).await
    }

    /// Updates node `id` of `tenant` from the input `change` makes of it as stored, in one
    /// transaction (see [`Store::update_product_with`]). `change` may refuse a node that is
    /// not where the caller expects it.
    pub async fn update_node_with<E: From<StoreError>>(
        &self,
        tenant: &TenantId,
        id: NodeId,
        change: impl FnOnce(&Node) -> Result<NodeInput, E> + Send,
    ) -> Result<Node, E> {
        edit::<NodeRow, E>(self, tenant, id, change).await
    }

    /// Deletes node `id` of `tenant` with its whole subtree and their product links.
    pub async fn delete_node(&self, tenant: &TenantId, id: NodeId) -> Result<(), StoreError> {
        delete::<NodeRow>(self, tenant, id).await
    }

    /// Puts product `product` in node `node` (both `tenant`'s). Linking twice is harmless.
    ///
    /// Errors: `NotFound` (node or product).
    pub async fn link_node_product(
        &self,
        tenant: &TenantId,
        node: NodeId,
        product: ProductId,
    ) -> Result<(), StoreError> {
        NODE_PRODUCTS.set(self, tenant, (node, product), Linked::Yes).await
    }

    /// Takes product `product` out of node `node`. Unlinking a product that is not linked is
    /// harmless.
    ///
    /// Errors: `NotFound` (node or product).
    pub async fn unlink_node_product(
        &self,
        tenant: &TenantId,
        node: NodeId,
        product: ProductId,
    ) -> Result<(), StoreError> {
        NODE_PRODUCTS.set(self, tenant, (node, product), Linked::No).await
    }

    /// A page of the products in node `node`, in product creation order, with the total.
    ///
    /// Errors: `NotFound` (the node is not `tenant`'s).
    pub async fn list_node_products(
        &self,
        tenant: &TenantId,
        node: NodeId,
        offset: u64,
        limit: u64,
    ) -> Result<CatalogPage<Product>, StoreError> {
        let mut db = self.read().await?;
        must_exist::<NodeRow>(&mut db, tenant, node).await?;
        let node = node.to_string();
        page::<ProductRow>(
            &mut db,
            |sql| NODE_PRODUCTS.push_linked_to_left(sql, "p", &node),
            offset,
            limit,
        )
        .await
    }

    /// The nodes product `product` is in, in node creation order.
    ///
    /// Errors: `NotFound` (the product is not `tenant`'s).
    pub async fn list_product_nodes(
        &self,
        tenant: &TenantId,
        product: ProductId,
    ) -> Result<Vec<Node>, StoreError> {
        let mut db = self.read().await?;
        must_exist::<ProductRow>(&mut db, tenant, product).await?;
        let product = product.to_string();
        all::<NodeRow>(&mut db, |sql| NODE_PRODUCTS.push_linked_to_right(sql, "n", &product)).await
    }

    /// Duplicates hierarchy `source` of `tenant`, fenced, in one transaction
    /// (vendor-apis.md A.10): a new hierarchy with `copy.name`/`copy.description` (the
    /// source's when `None`) and the source's slug and extras (hierarchy slugs need not be
    /// unique), every node with the same tree shape and fields (new ids), and, when
    /// `copy.include_products`, the same product links. Returns the new hierarchy's id (the
    /// job's `meta.hierarchy_id`).
    ///
    /// Exactly once: the copy commits with the job's checkpoint moving from `at` (the
    /// position the job is at, 0 on a first run) to `at + 1`, with `{"hierarchy_id": …}` as
    /// its state. A retry after the copy committed gets `Replayed` and nothing is copied again;
    /// the job reads the copy's id from its checkpoint.
    ///
    /// Errors: `Fenced`, `Replayed`, `NotFound` (no such hierarchy of `tenant`), `Invalid`
    /// (bad name).
    pub async fn duplicate_hierarchy(
        &self,
        fence: Fence,
        at: u64,
        tenant: &TenantId,
        source: HierarchyId,
        copy: &HierarchyCopy,
    ) -> Result<HierarchyId, StoreError> {
        if let Some(name) = &copy.name {
            let input = HierarchyInput { name: name.clone(), ..HierarchyInput::default() };
            check(input.validate())?;
        }
        let now = self.now_ms();
        let id = HierarchyId::new();
        let mut tx = self.begin().await?;
        open_once(&mut tx, fence, at, now).await?;
        let src = get::<HierarchyRow>(&mut tx, tenant, source).await?;
        let h = NewHierarchy {
            name: copy.name.as_deref().unwrap_or(&src.name),
            description: match &copy.description {
                Some(d) => merge_text(&Some(d.clone()), None),
                None => src.description.clone(),
            },
            slug: src.slug.clone(),
            extras: src.extras.to_string(),
        };
        insert_hierarchy(&mut tx, tenant, id, h, now).await?;
        let source_id = source.to_string();
        let keys = [("hierarchy_id", source_id.as_str())];
        let nodes = all::<NodeRow>(&mut tx, |sql| NodeRow::TABLE.push_keys(sql, &keys)).await?;
        let (copies, new_ids) = copy_tree(source, &nodes)?;
        insert_nodes(&mut tx, tenant, id, &copies, now).await?;
        if copy.include_products {
            copy_links(&mut tx, tenant, source, &new_ids, now).await?;
        }
        let outcome = serde_json::json!({ "hierarchy_id": id.to_string() });
        settle_once(&mut tx, fence, at, &outcome, now).await?;
        tx.commit().await?;
        Ok(id)
    }
}
