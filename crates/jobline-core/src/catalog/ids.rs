//! The typed ids of catalog records. Each entity gets its own id type, so that a node id can
//! never be passed where a product id is expected; all of them are UUIDv7s, parsed only from the
//! canonical hyphenated form so that one record has one spelling in URLs and files.

use std::fmt;

use uuid::Uuid;

use crate::error::ValidationError;

macro_rules! catalog_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh id: a UUIDv7, so records created later sort later.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses the canonical hyphenated form (any case); anything else is a validation
            /// error on the field `id`.
            pub fn parse(s: &str) -> Result<Self, ValidationError> {
                let bad = || ValidationError::new("id", format!("{s:?} is not a valid {}", $what));
                if s.len() != 36 {
                    return Err(bad());
                }
                Uuid::parse_str(s).map(Self).map_err(|_| bad())
            }

            /// The UUID inside.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

catalog_id!(
    /// A product's id.
    ProductId,
    "product id"
);
catalog_id!(
    /// A hierarchy's id.
    HierarchyId,
    "hierarchy id"
);
catalog_id!(
    /// A hierarchy node's id.
    NodeId,
    "node id"
);
catalog_id!(
    /// A variation's id.
    VariationId,
    "variation id"
);
catalog_id!(
    /// A variation option's id.
    VariationOptionId,
    "variation option id"
);
catalog_id!(
    /// A price book's id.
    PriceBookId,
    "price book id"
);
catalog_id!(
    /// A product price's id.
    PriceId,
    "price id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_only_the_canonical_form() {
        let id = ProductId::new();
        assert_eq!(ProductId::parse(&id.to_string()), Ok(id));
        assert_eq!(ProductId::parse(&id.to_string().to_uppercase()), Ok(id));
        assert!(ProductId::parse("x").is_err());
        assert!(NodeId::parse(&id.as_uuid().simple().to_string()).is_err());
    }
}
