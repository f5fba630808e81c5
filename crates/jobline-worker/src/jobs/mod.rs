//! Concrete job handlers. Each dialect's kinds get a module here; the engine's own kinds
//! (`engine/noop`, `engine/sleep`) serve tests and benchmarks and are not exposed on any vendor
//! API.

pub mod noop;
pub mod pxm;
pub mod sleep;

use crate::handler::Registry;

/// The engine's built-in kinds.
pub fn engine_kinds(registry: Registry) -> Registry {
    registry.with(noop::Noop).with(sleep::Sleep)
}

/// The Elastic Path PXM kinds (`jobline_core::kinds::pxm`).
pub fn pxm_kinds(registry: Registry) -> Registry {
    registry
        .with(pxm::ProductImport)
        .with(pxm::ProductExport)
        .with(pxm::HierarchyDuplicate)
        .with(pxm::ChildProducts)
        .with(pxm::PriceImport)
}
