//! Variations and their options: the stored records and what a create or update carries. The
//! planner reads them (as `VariationSpec`s) to decide a base product's children.

use chrono::{DateTime, Utc};

use super::checks::check_name;
use super::ids::{VariationId, VariationOptionId};
use crate::error::ValidationError;
use crate::ids::TenantId;

/// A variation (`product-variation`), with its options.
#[derive(Debug, Clone, PartialEq)]
pub struct Variation {
    /// Its id.
    pub id: VariationId,
    /// Owning tenant.
    pub tenant: TenantId,
    /// Name, e.g. "Size".
    pub name: String,
    /// Position among the product's variations; also the order of option names in child SKUs.
    pub sort_order: Option<i64>,
    /// Its options, by `sort_order` (unset last), then creation.
    pub options: Vec<VariationOption>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// One option of a variation (`product-variation-option`).
#[derive(Debug, Clone, PartialEq)]
pub struct VariationOption {
    /// Its id.
    pub id: VariationOptionId,
    /// The variation it belongs to.
    pub variation_id: VariationId,
    /// Name, e.g. "Large"; becomes part of child SKUs and slugs.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Position among the variation's options.
    pub sort_order: Option<i64>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// The rules of a variation and of an option: only their name is checked.
fn name_errors(name: &str) -> Vec<ValidationError> {
    let mut errors = Vec::new();
    check_name(name, &mut errors);
    errors
}

/// What a create or update of a variation carries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VariationInput {
    /// Name (required).
    pub name: String,
    /// Position.
    pub sort_order: Option<i64>,
}

impl VariationInput {
    /// Every rule the input breaks; empty when it is valid.
    pub fn validate(&self) -> Vec<ValidationError> {
        name_errors(&self.name)
    }
}

/// What a create or update of a variation option carries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VariationOptionInput {
    /// Name (required).
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Position.
    pub sort_order: Option<i64>,
}

impl VariationOptionInput {
    /// Every rule the input breaks; empty when it is valid.
    pub fn validate(&self) -> Vec<ValidationError> {
        name_errors(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_variations_and_options_are_required() {
        assert_eq!(VariationInput::default().validate().len(), 1);
        assert_eq!(VariationOptionInput::default().validate().len(), 1);
    }
}
