//! Concrete job handlers. Each dialect's kinds get a module here (`zuora`: custom object bulk
//! jobs); the engine's own kinds
//! (`engine/noop`, `engine/sleep`) serve tests and benchmarks and are not exposed on any vendor
//! API.

pub mod noop;
pub mod promotions;
pub mod pxm;
pub mod sleep;
pub mod zuora;

use crate::handler::Registry;

/// The engine's built-in kinds.
pub fn engine_kinds(registry: Registry) -> Registry {
    registry.with(noop::Noop).with(sleep::Sleep)
}

/// The Elastic Path Promotions kinds (`code_generate`, `code_export`).
pub fn promotions_kinds(registry: Registry) -> Registry {
    registry.with(promotions::CodeGenerate).with(promotions::CodeExport)
}

/// The Zuora dialect's kinds.
pub fn zuora_kinds(registry: Registry) -> Registry {
    registry.with(zuora::ZuoraBulk)
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
