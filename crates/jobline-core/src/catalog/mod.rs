//! The Elastic Path PXM catalog that PXM jobs act on: products, hierarchies and their nodes,
//! variations and their options, price books and prices (`shared/spec/vendor-apis.md` A.8–A.13).
//!
//! This module holds the value types, the rules an input must follow before it is stored, and
//! the pure parts of the jobs: the EP filter syntax of product exports, and the plan of a
//! child-product build (every combination of the variations' options, filtered by the product's
//! `build_rules`). It does no I/O; the store writes what these functions decide. None of these
//! types goes on the wire: each dialect converts them into its own DTOs.
//!
//! One rule holds for every `*Input` type: a field that is `None` is "not given". Creating a
//! record stores nothing (or the documented default) for it; updating a record keeps the stored
//! value. An optional text given as `Some("")` clears the stored value, and a JSON field given as
//! `Some(Value::Null)` clears it. Required fields are plain values and always replace. This lets
//! a CSV import row (a column that is absent versus a cell that is empty) and a partial update
//! use the same types.
//!
//! The code is split by entity and by concern, each in a private module whose public items are
//! re-exported here, so `jobline_core::catalog::X` stays the one path callers use: `ids` (the
//! typed ids), `products`, `hierarchies` (hierarchies and their nodes), `variations`,
//! `pricebooks` (price books and prices), `merge` (the update rule above, as functions the store
//! calls), `checks` (field rules several inputs share), `planner` (the child-product build plan)
//! and `filter` (EP's export filter syntax).

mod checks;
mod filter;
mod hierarchies;
mod ids;
mod merge;
mod planner;
mod pricebooks;
mod products;
mod variations;

pub use checks::{is_url_safe, MAX_ATTRIBUTES, MAX_EXTERNAL_REF, MAX_HIERARCHY_NAME};
pub use filter::{parse_ep_filter, FilterClause, FilterOp, ProductField, ProductFilter};
pub use hierarchies::{Hierarchy, HierarchyInput, Node, NodeInput};
pub use ids::{
    HierarchyId, NodeId, PriceBookId, PriceId, ProductId, VariationId, VariationOptionId,
};
pub use merge::{merge_extras, merge_json, merge_text, new_extras, REMOVE_ATTRIBUTE};
pub use planner::{
    child_sku, child_slug, combination_key, plan_children, BuildRules, ChildPlan, OptionSpec,
    RuleDefault, VariationSpec, AMBIGUOUS_RULES, MAX_CHILDREN,
};
pub use pricebooks::{Price, PriceBook, PriceBookInput, PriceInput};
pub use products::{
    CommodityType, Product, ProductData, ProductInput, ProductStatus, MAX_TAGS, MAX_TAG_LEN,
};
pub use variations::{Variation, VariationInput, VariationOption, VariationOptionInput};
