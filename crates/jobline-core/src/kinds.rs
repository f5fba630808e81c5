//! The job kinds of each dialect and the queue each runs in (`shared/spec/DECISIONS.md`,
//! "One engine, three dialects" and "Queues and order"). The HTTP edge creates jobs of these
//! kinds; the worker registers a handler for each.

use crate::ids::{QueueKey, TenantId};
use crate::job::{CancelPolicy, KindSpec};

/// Elastic Path PXM: one queue per store, one job at a time, only `pending` jobs cancel.
pub mod pxm {
    use super::*;

    const fn kind(name: &'static str) -> KindSpec {
        KindSpec { name, cancel: CancelPolicy::PENDING, max_attempts: 3 }
    }

    /// `product-import`.
    pub const PRODUCT_IMPORT: KindSpec = kind("pxm/product-import");
    /// `product-export`.
    pub const PRODUCT_EXPORT: KindSpec = kind("pxm/product-export");
    /// `hierarchy-duplicate`.
    pub const HIERARCHY_DUPLICATE: KindSpec = kind("pxm/hierarchy-duplicate");
    /// `child-products`.
    pub const CHILD_PRODUCTS: KindSpec = kind("pxm/child-products");
    /// `price-import` (DECISIONS.md settles this spelling).
    pub const PRICE_IMPORT: KindSpec = kind("pxm/price-import");

    /// Every PXM kind.
    pub const ALL: [KindSpec; 5] =
        [PRODUCT_IMPORT, PRODUCT_EXPORT, HIERARCHY_DUPLICATE, CHILD_PRODUCTS, PRICE_IMPORT];

    /// The store's one PXM queue.
    pub fn queue(tenant: &TenantId) -> QueueKey {
        QueueKey::new(tenant, "pxm", "jobs")
    }
}

/// Elastic Path Promotions: one FIFO queue per store; a running job may be cancelled.
pub mod promotions {
    use super::*;

    const fn kind(name: &'static str) -> KindSpec {
        KindSpec { name, cancel: CancelPolicy::PENDING_OR_RUNNING, max_attempts: 3 }
    }

    /// `code_generate`.
    pub const CODE_GENERATE: KindSpec = kind("promotions/code_generate");
    /// `code_export`.
    pub const CODE_EXPORT: KindSpec = kind("promotions/code_export");

    /// Every promotions kind.
    pub const ALL: [KindSpec; 2] = [CODE_GENERATE, CODE_EXPORT];

    /// The store's promotions queue.
    pub fn queue(tenant: &TenantId) -> QueueKey {
        QueueKey::new(tenant, "promotions", "jobs")
    }
}

/// Zuora custom-object bulk jobs: FIFO one at a time per tenant; cancel while waiting for the
/// file or queued.
pub mod zuora {
    use super::*;

    /// A bulk create, update or delete of custom object records (the operation is in the
    /// payload).
    pub const BULK: KindSpec =
        KindSpec { name: "zuora/bulk", cancel: CancelPolicy::AWAITING_OR_PENDING, max_attempts: 3 };

    /// The tenant's Zuora queue.
    pub fn queue(tenant: &TenantId) -> QueueKey {
        QueueKey::new(tenant, "zuora", "jobs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobState;

    #[test]
    fn kinds_follow_the_dialect_cancel_rules() {
        for k in pxm::ALL {
            assert!(k.name.starts_with("pxm/"));
            assert!(k.cancel.allows(JobState::Pending) && !k.cancel.allows(JobState::Running));
        }
        for k in promotions::ALL {
            assert!(k.cancel.allows(JobState::Running));
        }
        assert!(zuora::BULK.cancel.allows(JobState::AwaitingInput));
        assert!(!zuora::BULK.cancel.allows(JobState::Running));
        let t = TenantId::parse("s1").unwrap();
        assert_ne!(pxm::queue(&t), promotions::queue(&t));
    }
}
