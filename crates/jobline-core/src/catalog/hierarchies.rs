//! Hierarchies and their nodes: the stored records and what a create or update carries. Where a
//! node sits in its tree is the store's business; this module only checks a node's own fields.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::checks::{check_extras, check_name, check_optional_slug};
use super::ids::{HierarchyId, NodeId};
use crate::error::ValidationError;
use crate::ids::TenantId;

/// A stored hierarchy.
#[derive(Debug, Clone, PartialEq)]
pub struct Hierarchy {
    /// Its id.
    pub id: HierarchyId,
    /// Owning tenant.
    pub tenant: TenantId,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Slug. Not unique: a duplicated hierarchy keeps its source's slug (A.10).
    pub slug: Option<String>,
    /// Locales and custom attributes, stored as given (an object).
    pub extras: Value,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// What a create or update of a hierarchy carries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HierarchyInput {
    /// Name (required, at most 1000 characters).
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Slug: letters, digits, `.`, `-` and `_`.
    pub slug: Option<String>,
    /// Locales and custom attributes; merged on update like a product's `extras`.
    pub extras: Value,
}

/// The rules of a hierarchy and of a node, which carry the same checked fields: a name, an
/// optional slug and `extras`.
fn named_record_errors(name: &str, slug: &Option<String>, extras: &Value) -> Vec<ValidationError> {
    let mut errors = Vec::new();
    check_name(name, &mut errors);
    check_optional_slug(slug, &mut errors);
    check_extras(extras, &mut errors);
    errors
}

impl HierarchyInput {
    /// Every rule the input breaks; empty when it is valid.
    pub fn validate(&self) -> Vec<ValidationError> {
        named_record_errors(&self.name, &self.slug, &self.extras)
    }
}

impl From<&Hierarchy> for HierarchyInput {
    /// The input that would leave `h` as it is.
    fn from(h: &Hierarchy) -> Self {
        HierarchyInput {
            name: h.name.clone(),
            description: h.description.clone(),
            slug: h.slug.clone(),
            extras: h.extras.clone(),
        }
    }
}

/// A node of a hierarchy.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Its id.
    pub id: NodeId,
    /// Owning tenant.
    pub tenant: TenantId,
    /// The hierarchy it belongs to.
    pub hierarchy_id: HierarchyId,
    /// Its parent node; `None` for a top-level node.
    pub parent_id: Option<NodeId>,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Slug.
    pub slug: Option<String>,
    /// Position among its siblings (lower first; EP's `sort_order`).
    pub sort_order: Option<i64>,
    /// Locales and custom attributes (an object).
    pub extras: Value,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// What a create or update of a node carries. Where the node sits (hierarchy, parent) is given
/// to the store separately, at creation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeInput {
    /// Name (required, at most 1000 characters).
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Slug: letters, digits, `.`, `-` and `_`.
    pub slug: Option<String>,
    /// Position among siblings.
    pub sort_order: Option<i64>,
    /// Locales and custom attributes; merged on update.
    pub extras: Value,
}

impl NodeInput {
    /// Every rule the input breaks; empty when it is valid.
    pub fn validate(&self) -> Vec<ValidationError> {
        named_record_errors(&self.name, &self.slug, &self.extras)
    }
}

impl From<&Node> for NodeInput {
    /// The input that would leave `n` as it is.
    fn from(n: &Node) -> Self {
        NodeInput {
            name: n.name.clone(),
            description: n.description.clone(),
            slug: n.slug.clone(),
            sort_order: n.sort_order,
            extras: n.extras.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_hierarchies_and_nodes_are_required() {
        assert_eq!(HierarchyInput::default().validate().len(), 1);
        let long = HierarchyInput { name: "x".repeat(1001), ..Default::default() };
        assert_eq!(long.validate().len(), 1);
        let bad_slug =
            NodeInput { name: "n".into(), slug: Some("a b".into()), ..Default::default() };
        assert_eq!(bad_slug.validate()[0].field, "data.attributes.slug");
        assert!(NodeInput { name: "n".into(), slug: Some(String::new()), ..Default::default() }
            .validate()
            .is_empty());
    }
}
