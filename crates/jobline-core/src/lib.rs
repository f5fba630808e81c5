//! jobline's domain: what a job is, which states it moves through and which moves are legal,
//! and the catalog records (products, hierarchies, price books) that jobs act on.
//!
//! This crate does no I/O and depends on no async runtime, database or web crate (its
//! Cargo.toml is checked by `crates/jobline-core/tests/architecture.rs`). Every other crate builds on
//! these types; the rules live here so they are tested once, table-driven.
#![warn(missing_docs)]

pub mod catalog;
pub mod clock;
pub mod error;
pub mod files;
pub mod ids;
pub mod job;
pub mod kinds;
pub mod promo;
pub mod zuora;

pub use catalog::{
    parse_ep_filter, BuildRules, CommodityType, FilterClause, FilterOp, Hierarchy, HierarchyId,
    HierarchyInput, Node, NodeId, NodeInput, Price, PriceBook, PriceBookId, PriceBookInput,
    PriceId, PriceInput, Product, ProductData, ProductField, ProductFilter, ProductId,
    ProductInput, ProductStatus, Variation, VariationId, VariationInput, VariationOption,
    VariationOptionId, VariationOptionInput,
};
#[cfg(any(test, feature = "test-util"))]
pub use clock::FakeClock;
pub use clock::{Clock, SystemClock};
pub use error::{TransitionError, ValidationError};
pub use ids::{ClientId, JobId, QueueKey, TenantId};
pub use job::{
    Action, CancelPolicy, Checkpoint, InitialState, Job, JobErrorEntry, JobState, KindSpec, NewJob,
    Progress, Role,
};
