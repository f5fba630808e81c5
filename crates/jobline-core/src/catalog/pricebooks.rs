//! Price books and their prices: the stored records, what a create, update or import object
//! carries (A.12), and the checks of a price's currencies and tiers before the store writes it.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::checks::{attr, check_attributes, check_external_ref};
use super::ids::{PriceBookId, PriceId};
use super::merge::given;
use crate::error::ValidationError;
use crate::ids::TenantId;

/// A price book.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceBook {
    /// Its id.
    pub id: PriceBookId,
    /// Owning tenant.
    pub tenant: TenantId,
    /// Name, unique within the tenant.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// External key, unique within the tenant when present.
    pub external_ref: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// What a create, update or import object carries for a price book (A.12).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PriceBookInput {
    /// The book to update (import objects only; must exist).
    pub id: Option<PriceBookId>,
    /// Name (required).
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// External key; an import upserts by it.
    pub external_ref: Option<String>,
}

impl PriceBookInput {
    /// Every rule the input breaks; empty when it is valid.
    pub fn validate(&self) -> Vec<ValidationError> {
        let mut errors = Vec::new();
        if self.name.trim().is_empty() {
            errors.push(ValidationError::new(attr("name"), "must not be empty"));
        }
        check_external_ref(&attr("external_ref"), &self.external_ref, &mut errors);
        errors
    }

    /// The external key given, if any.
    pub fn external_key(&self) -> Option<&str> {
        given(&self.external_ref).flatten()
    }
}

/// A product price in a price book.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    /// Its id.
    pub id: PriceId,
    /// Owning tenant.
    pub tenant: TenantId,
    /// The book it belongs to.
    pub pricebook_id: PriceBookId,
    /// The product SKU it prices, unique within the book.
    pub sku: String,
    /// External key, unique within the book when present.
    pub external_ref: Option<String>,
    /// `{"USD": {"amount": 100, "includes_tax": false, "tiers"?: {…}}, …}`; amounts in minor
    /// units.
    pub currencies: Value,
    /// Sale prices, stored as given.
    pub sales: Option<Value>,
    /// Admin attributes (at most 100 keys).
    pub admin_attributes: Option<Value>,
    /// Shopper attributes (at most 100 keys).
    pub shopper_attributes: Option<Value>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// What a create, update or import object carries for a price (A.12).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PriceInput {
    /// The price to update (import objects only; must exist in the book).
    pub id: Option<PriceId>,
    /// The SKU (required).
    pub sku: String,
    /// External key, unique within the book.
    pub external_ref: Option<String>,
    /// Amounts per currency (required, at least one currency).
    pub currencies: Value,
    /// Sale prices.
    pub sales: Option<Value>,
    /// Admin attributes.
    pub admin_attributes: Option<Value>,
    /// Shopper attributes.
    pub shopper_attributes: Option<Value>,
}

fn check_integer(v: Option<&Value>, field: &str, what: &str, errors: &mut Vec<ValidationError>) {
    if !v.is_some_and(|a| a.is_i64()) {
        errors.push(ValidationError::new(field, format!("{what} must be an integer")));
    }
}

impl PriceInput {
    /// Every rule the input breaks; empty when it is valid.
    pub fn validate(&self) -> Vec<ValidationError> {
        let mut errors = Vec::new();
        if self.sku.trim().is_empty() {
            errors.push(ValidationError::new(attr("sku"), "missing sku for price"));
        }
        check_external_ref(&attr("external_ref"), &self.external_ref, &mut errors);
        let field = attr("currencies");
        match self.currencies.as_object() {
            Some(map) if !map.is_empty() => {
                for (code, amount) in map {
                    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
                        errors.push(ValidationError::new(
                            field.as_str(),
                            format!("{code:?} is not a three-letter currency code"),
                        ));
                    }
                    let Some(amount) = amount.as_object() else {
                        errors.push(ValidationError::new(
                            field.as_str(),
                            format!("{code} must be an object"),
                        ));
                        continue;
                    };
                    check_integer(
                        amount.get("amount"),
                        &field,
                        &format!("{code}.amount"),
                        &mut errors,
                    );
                    if !amount.get("includes_tax").is_some_and(Value::is_boolean) {
                        errors.push(ValidationError::new(
                            field.as_str(),
                            format!("{code}.includes_tax must be true or false"),
                        ));
                    }
                    match amount.get("tiers") {
                        None | Some(Value::Null) => {}
                        Some(Value::Object(tiers)) => {
                            for (name, tier) in tiers {
                                let what = format!("{code}.tiers.{name}");
                                check_integer(
                                    tier.get("minimum_quantity"),
                                    &field,
                                    &format!("{what}.minimum_quantity"),
                                    &mut errors,
                                );
                                check_integer(
                                    tier.get("amount"),
                                    &field,
                                    &format!("{what}.amount"),
                                    &mut errors,
                                );
                            }
                        }
                        Some(_) => errors.push(ValidationError::new(
                            field.as_str(),
                            format!("{code}.tiers must be an object"),
                        )),
                    }
                }
            }
            _ => errors.push(ValidationError::new(field, "must name at least one currency")),
        }
        if let Some(s) = self.sales.as_ref().filter(|s| !s.is_null()) {
            if !s.is_object() {
                errors.push(ValidationError::new(attr("sales"), "must be an object"));
            }
        }
        for (name, v) in [
            ("admin_attributes", &self.admin_attributes),
            ("shopper_attributes", &self.shopper_attributes),
        ] {
            check_attributes(name, v.as_ref(), &mut errors);
        }
        errors
    }

    /// The external key given, if any.
    pub fn external_key(&self) -> Option<&str> {
        given(&self.external_ref).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn price_inputs_are_validated() {
        let ok = PriceInput {
            sku: "s".into(),
            currencies: json!({"USD": {"amount": 100, "includes_tax": false,
                "tiers": {"ten": {"minimum_quantity": 10, "amount": 90}}}}),
            ..Default::default()
        };
        assert!(ok.validate().is_empty());
        type Case = (fn(&mut PriceInput), &'static str);
        let cases: [Case; 6] = [
            (|p| p.sku = String::new(), "data.attributes.sku: missing sku for price"),
            (|p| p.currencies = json!({}), "data.attributes.currencies: must name at least one"),
            (
                |p| p.currencies = json!({"USD": {"amount": 1.5, "includes_tax": true}}),
                "data.attributes.currencies: USD.amount must be an integer",
            ),
            (
                |p| p.currencies = json!({"USD": {"amount": 1}}),
                "data.attributes.currencies: USD.includes_tax",
            ),
            (
                |p| p.currencies = json!({"DOLLARS": {"amount": 1, "includes_tax": true}}),
                "data.attributes.currencies: \"DOLLARS\" is not",
            ),
            (|p| p.sales = Some(json!(3)), "data.attributes.sales: must be an object"),
        ];
        for (edit, want) in cases {
            let mut p = ok.clone();
            edit(&mut p);
            let errors = p.validate();
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(errors[0].to_string().starts_with(want), "{}", errors[0]);
        }
    }

    #[test]
    fn names_of_price_books_are_required() {
        assert_eq!(PriceBookInput::default().validate().len(), 1);
    }
}
