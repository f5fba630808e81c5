//! Products: the stored record, what a create, update or import row carries, and the rules
//! that turn such an input into the fields the store writes (validation, then the update rule
//! of `merge`). Everything product-specific lives here; rules other entities share are in
//! `checks`.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::checks::{attr, check_external_ref, check_extras, is_url_safe, SLUG_RULE};
use super::ids::{ProductId, VariationOptionId};
use super::merge::{given, merge_extras, merge_json, merge_text, new_extras};
use super::planner::BuildRules;
use crate::error::ValidationError;
use crate::ids::TenantId;

/// Most tags a product may carry (A.8).
pub const MAX_TAGS: usize = 20;
/// Longest tag, in characters (A.8).
pub const MAX_TAG_LEN: usize = 255;

/// Whether a product is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProductStatus {
    /// Not yet published (the default).
    Draft,
    /// Published.
    Live,
}

impl ProductStatus {
    /// The stored and rendered name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProductStatus::Draft => "draft",
            ProductStatus::Live => "live",
        }
    }

    /// Parses a status case-insensitively: EP's docs say `Draft`/`Live`, its example file says
    /// `draft`/`live` (A.8), so both are accepted.
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("draft") {
            Some(ProductStatus::Draft)
        } else if s.eq_ignore_ascii_case("live") {
            Some(ProductStatus::Live)
        } else {
            None
        }
    }
}

/// Whether a product is shipped or downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommodityType {
    /// Shipped.
    Physical,
    /// Downloaded.
    Digital,
}

impl CommodityType {
    /// The stored and rendered name.
    pub fn as_str(self) -> &'static str {
        match self {
            CommodityType::Physical => "physical",
            CommodityType::Digital => "digital",
        }
    }

    /// Parses a commodity type case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("physical") {
            Some(CommodityType::Physical)
        } else if s.eq_ignore_ascii_case("digital") {
            Some(CommodityType::Digital)
        } else {
            None
        }
    }
}

/// A stored product.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    /// Its id.
    pub id: ProductId,
    /// The tenant (EP store) it belongs to; other tenants never see it.
    pub tenant: TenantId,
    /// Name.
    pub name: String,
    /// Description (may be empty).
    pub description: String,
    /// URL slug, unique within the tenant.
    pub slug: String,
    /// Stock keeping unit, unique within the tenant when present.
    pub sku: Option<String>,
    /// Published or not.
    pub status: ProductStatus,
    /// Physical or digital.
    pub commodity_type: CommodityType,
    /// UPC or EAN code.
    pub upc_ean: Option<String>,
    /// Manufacturer part number (`manufacturer_part_num` in EP filters).
    pub mpn: Option<String>,
    /// The caller's own key, unique within the tenant when present.
    pub external_ref: Option<String>,
    /// Tags, in the order given, without duplicates.
    pub tags: Vec<String>,
    /// The base product of a child product.
    pub parent_id: Option<ProductId>,
    /// For a built child product: the option combination it stands for, one option per
    /// variation, sorted by id. Empty for every other product.
    pub child_options: Vec<VariationOptionId>,
    /// A child product that was edited directly: rebuilds of its parent leave it alone
    /// (A.11: "directly edited children become independent of the parent").
    pub independent: bool,
    /// The rules deciding which option combinations a build turns into children.
    pub build_rules: Option<Value>,
    /// Everything else, stored as given: template columns (`template:<flow>:<field>` keys),
    /// `shopper_attributes`, `admin_attributes`, `locales`. Always a JSON object.
    pub extras: Value,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Product {
    /// The product's writable fields, for copying them (to a child product, for instance).
    pub fn data(&self) -> ProductData {
        ProductData {
            name: self.name.clone(),
            description: self.description.clone(),
            slug: self.slug.clone(),
            sku: self.sku.clone(),
            status: self.status,
            commodity_type: self.commodity_type,
            upc_ean: self.upc_ean.clone(),
            mpn: self.mpn.clone(),
            external_ref: self.external_ref.clone(),
            tags: self.tags.clone(),
            build_rules: self.build_rules.clone(),
            extras: self.extras.clone(),
        }
    }
}

/// What a create, an update or an import row carries for a product. Text stays as the caller
/// sent it (`status` as typed, `id` as a string) so that [`ProductInput::validate`] can report
/// every problem of a row at once, with EP's field names (`data.attributes.sku`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProductInput {
    /// The product to update (import rows only). `Some("")` counts as not given, because an
    /// import file has an `id` column whose cell is empty for new products.
    pub id: Option<String>,
    /// Name (required, not empty).
    pub name: String,
    /// Description (required, may be empty).
    pub description: String,
    /// Slug (required): letters, digits, `.`, `-` and `_` only.
    pub slug: String,
    /// SKU.
    pub sku: Option<String>,
    /// `draft` or `live`, any case. Not given: `draft` on create.
    pub status: Option<String>,
    /// `physical` or `digital`, any case (required).
    pub commodity_type: String,
    /// UPC or EAN.
    pub upc_ean: Option<String>,
    /// Manufacturer part number.
    pub mpn: Option<String>,
    /// External key, at most 2048 characters.
    pub external_ref: Option<String>,
    /// At most 20 tags of at most 255 characters, without spaces or commas.
    pub tags: Option<Vec<String>>,
    /// Build rules: `{"default": "include"|"exclude", "include"?: [[option ids]], "exclude"?: …}`.
    pub build_rules: Option<Value>,
    /// Template columns, attributes and locales (an object; `Null` counts as `{}`). On update
    /// the keys given replace the stored ones and the others stay; a key given as `null` is
    /// removed; inside `shopper_attributes`/`admin_attributes` only the keys given change, and
    /// the value `__REMOVE_ATTRIBUTE__` removes a key (A.8).
    pub extras: Value,
}

/// A product's writable fields, checked and typed: what the store writes.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductData {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Slug.
    pub slug: String,
    /// SKU.
    pub sku: Option<String>,
    /// Status.
    pub status: ProductStatus,
    /// Commodity type.
    pub commodity_type: CommodityType,
    /// UPC or EAN.
    pub upc_ean: Option<String>,
    /// Manufacturer part number.
    pub mpn: Option<String>,
    /// External key.
    pub external_ref: Option<String>,
    /// Tags, without duplicates.
    pub tags: Vec<String>,
    /// Build rules.
    pub build_rules: Option<Value>,
    /// Template columns, attributes, locales (an object).
    pub extras: Value,
}

impl From<&Product> for ProductInput {
    /// The input that would leave `product` as it is: the starting point of a partial update
    /// (overlay the fields the client sent, then update).
    fn from(p: &Product) -> Self {
        ProductInput {
            id: Some(p.id.to_string()),
            name: p.name.clone(),
            description: p.description.clone(),
            slug: p.slug.clone(),
            sku: p.sku.clone(),
            status: Some(p.status.as_str().to_owned()),
            commodity_type: p.commodity_type.as_str().to_owned(),
            upc_ean: p.upc_ean.clone(),
            mpn: p.mpn.clone(),
            external_ref: p.external_ref.clone(),
            tags: Some(p.tags.clone()),
            build_rules: p.build_rules.clone(),
            extras: p.extras.clone(),
        }
    }
}

fn check_tags(tags: &[String], errors: &mut Vec<ValidationError>) {
    if tags.len() > MAX_TAGS {
        errors.push(ValidationError::new(
            attr("tags"),
            format!("must have at most {MAX_TAGS} tags, got {}", tags.len()),
        ));
    }
    for t in tags {
        if t.is_empty() {
            errors.push(ValidationError::new(attr("tags"), "a tag must not be empty"));
        } else if t.chars().count() > MAX_TAG_LEN {
            errors.push(ValidationError::new(
                attr("tags"),
                format!("tag {t:?} is longer than {MAX_TAG_LEN} characters"),
            ));
        } else if t.chars().any(|c| c.is_whitespace() || c == ',') {
            errors.push(ValidationError::new(
                attr("tags"),
                format!("tag {t:?} must not contain spaces or commas"),
            ));
        }
    }
}

/// Drops duplicate tags, keeping the first of each.
fn dedup_tags(tags: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    tags.iter().filter(|t| seen.insert(t.as_str())).cloned().collect()
}

impl ProductInput {
    /// Every rule the input breaks, in field order; empty when it is valid.
    pub fn validate(&self) -> Vec<ValidationError> {
        let mut errors = Vec::new();
        if let Some(Some(id)) = given(&self.id) {
            if let Err(e) = ProductId::parse(id) {
                errors.push(ValidationError::new("data.id", e.message));
            }
        }
        if self.name.trim().is_empty() {
            errors.push(ValidationError::new(attr("name"), "must not be empty"));
        }
        if !is_url_safe(&self.slug) {
            errors.push(ValidationError::new(
                attr("slug"),
                format!("{SLUG_RULE} (got {:?})", self.slug),
            ));
        }
        if let Some(s) = &self.status {
            if ProductStatus::parse(s).is_none() {
                errors.push(ValidationError::new(
                    attr("status"),
                    format!("must be draft or live (got {s:?})"),
                ));
            }
        }
        if CommodityType::parse(&self.commodity_type).is_none() {
            errors.push(ValidationError::new(
                attr("commodity_type"),
                format!("must be physical or digital (got {:?})", self.commodity_type),
            ));
        }
        check_external_ref(&attr("external_ref"), &self.external_ref, &mut errors);
        if let Some(tags) = &self.tags {
            check_tags(tags, &mut errors);
        }
        if let Some(rules) = self.build_rules.as_ref().filter(|r| !r.is_null()) {
            if let Err(e) = BuildRules::parse(rules) {
                errors.push(e);
            }
        }
        check_extras(&self.extras, &mut errors);
        errors
    }

    /// The id given, if any (after the empty-cell rule); `None` also when it is malformed,
    /// which [`validate`](Self::validate) reports.
    pub fn product_id(&self) -> Option<ProductId> {
        given(&self.id).flatten().and_then(|s| ProductId::parse(s).ok())
    }

    /// Whether the input names a product by id (a non-empty `id`).
    pub fn has_id(&self) -> bool {
        matches!(given(&self.id), Some(Some(_)))
    }

    /// The external key given, if any (a non-empty `external_ref`).
    pub fn external_key(&self) -> Option<&str> {
        given(&self.external_ref).flatten()
    }

    /// The fields to store: for a new product (`current` is `None`) or over `current`, under
    /// the catalog's "None keeps" rule. Fails with every rule the input breaks.
    pub fn resolve(&self, current: Option<&Product>) -> Result<ProductData, Vec<ValidationError>> {
        let errors = self.validate();
        if !errors.is_empty() {
            return Err(errors);
        }
        let status = match (&self.status, current) {
            (Some(s), _) => ProductStatus::parse(s).unwrap_or(ProductStatus::Draft),
            (None, Some(c)) => c.status,
            (None, None) => ProductStatus::Draft,
        };
        let tags = match (&self.tags, current) {
            (Some(t), _) => dedup_tags(t),
            (None, Some(c)) => c.tags.clone(),
            (None, None) => Vec::new(),
        };
        let build_rules =
            merge_json(&self.build_rules, current.and_then(|c| c.build_rules.as_ref()));
        let extras = match current {
            Some(c) => merge_extras(&c.extras, &self.extras),
            None => new_extras(&self.extras),
        };
        Ok(ProductData {
            name: self.name.clone(),
            description: self.description.clone(),
            slug: self.slug.clone(),
            sku: merge_text(&self.sku, current.and_then(|c| c.sku.as_ref())),
            status,
            commodity_type: CommodityType::parse(&self.commodity_type)
                .unwrap_or(CommodityType::Physical),
            upc_ean: merge_text(&self.upc_ean, current.and_then(|c| c.upc_ean.as_ref())),
            mpn: merge_text(&self.mpn, current.and_then(|c| c.mpn.as_ref())),
            external_ref: merge_text(
                &self.external_ref,
                current.and_then(|c| c.external_ref.as_ref()),
            ),
            tags,
            build_rules,
            extras,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::REMOVE_ATTRIBUTE;
    use serde_json::json;

    fn valid_input() -> ProductInput {
        ProductInput {
            name: "Shirt".into(),
            description: "A shirt".into(),
            slug: "shirt".into(),
            sku: Some("SH-1".into()),
            status: Some("Live".into()),
            commodity_type: "physical".into(),
            ..Default::default()
        }
    }

    /// One helper for every validation case: which fields the input gets wrong.
    fn check_validation(edit: impl FnOnce(&mut ProductInput), bad_fields: &[&str]) {
        let mut input = valid_input();
        edit(&mut input);
        let errors = input.validate();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, bad_fields, "errors: {errors:?}");
    }

    #[test]
    fn product_inputs_are_validated_field_by_field() {
        check_validation(|_| {}, &[]);
        check_validation(|i| i.name = "  ".into(), &["data.attributes.name"]);
        check_validation(|i| i.slug = "a b".into(), &["data.attributes.slug"]);
        check_validation(|i| i.slug = "a/b".into(), &["data.attributes.slug"]);
        check_validation(|i| i.slug = "A.b-c_9".into(), &[]);
        check_validation(|i| i.status = Some("DRAFT".into()), &[]);
        check_validation(|i| i.status = Some("gone".into()), &["data.attributes.status"]);
        check_validation(|i| i.status = None, &[]);
        check_validation(|i| i.commodity_type = "Digital".into(), &[]);
        check_validation(|i| i.commodity_type = "".into(), &["data.attributes.commodity_type"]);
        check_validation(|i| i.id = Some("".into()), &[]);
        check_validation(|i| i.id = Some("nope".into()), &["data.id"]);
        check_validation(|i| i.external_ref = Some("x".repeat(2048)), &[]);
        check_validation(
            |i| i.external_ref = Some("x".repeat(2049)),
            &["data.attributes.external_ref"],
        );
        check_validation(|i| i.tags = Some(vec!["a".into(), "b-c".into()]), &[]);
        check_validation(|i| i.tags = Some(vec!["a b".into()]), &["data.attributes.tags"]);
        check_validation(|i| i.tags = Some(vec!["a,b".into()]), &["data.attributes.tags"]);
        check_validation(|i| i.tags = Some(vec!["x".repeat(256)]), &["data.attributes.tags"]);
        check_validation(
            |i| i.tags = Some((0..21).map(|n| n.to_string()).collect()),
            &["data.attributes.tags"],
        );
        check_validation(|i| i.extras = json!([1]), &["data.attributes"]);
        check_validation(
            |i| i.extras = json!({"admin_attributes": "x"}),
            &["data.attributes.admin_attributes"],
        );
        check_validation(
            |i| i.build_rules = Some(json!({"default": "maybe"})),
            &["data.attributes.build_rules"],
        );
        check_validation(|i| i.build_rules = Some(Value::Null), &[]);
        check_validation(
            |i| {
                i.name = String::new();
                i.slug = String::new();
            },
            &["data.attributes.name", "data.attributes.slug"],
        );
    }

    #[test]
    fn slug_errors_read_like_ep_and_name_the_value() {
        let mut input = valid_input();
        input.slug = "a b".into();
        assert_eq!(
            input.validate()[0].to_string(),
            "data.attributes.slug: must contain only letters, digits, '.', '-' and '_' (got \"a b\")"
        );
    }

    fn stored(input: &ProductInput) -> Product {
        let d = input.resolve(None).unwrap();
        Product {
            id: ProductId::new(),
            tenant: TenantId::parse("t").unwrap(),
            name: d.name,
            description: d.description,
            slug: d.slug,
            sku: d.sku,
            status: d.status,
            commodity_type: d.commodity_type,
            upc_ean: d.upc_ean,
            mpn: d.mpn,
            external_ref: d.external_ref,
            tags: d.tags,
            parent_id: None,
            child_options: Vec::new(),
            independent: false,
            build_rules: d.build_rules,
            extras: d.extras,
            created_at: DateTime::<Utc>::MIN_UTC,
            updated_at: DateTime::<Utc>::MIN_UTC,
        }
    }

    #[test]
    fn resolve_keeps_what_is_not_given_and_clears_what_is_empty() {
        let mut first = valid_input();
        first.upc_ean = Some("123".into());
        first.tags = Some(vec!["a".into(), "b".into(), "a".into()]);
        first.extras =
            json!({"template:f:x": "1", "admin_attributes": {"k": "v", "gone": REMOVE_ATTRIBUTE}});
        let current = stored(&first);
        assert_eq!(current.tags, vec!["a", "b"], "duplicates dropped");
        assert_eq!(current.status, ProductStatus::Live);
        assert_eq!(current.extras, json!({"template:f:x": "1", "admin_attributes": {"k": "v"}}));

        let update = ProductInput {
            name: "Shirt 2".into(),
            description: String::new(),
            slug: "shirt".into(),
            sku: Some(String::new()),
            status: None,
            commodity_type: "digital".into(),
            mpn: Some("M".into()),
            extras: json!({"template:f:y": "2", "admin_attributes": {"k": REMOVE_ATTRIBUTE, "n": "1"}}),
            ..Default::default()
        };
        let d = update.resolve(Some(&current)).unwrap();
        assert_eq!(d.name, "Shirt 2");
        assert_eq!(d.sku, None, "Some(\"\") clears");
        assert_eq!(d.upc_ean.as_deref(), Some("123"), "None keeps");
        assert_eq!(d.mpn.as_deref(), Some("M"));
        assert_eq!(d.status, ProductStatus::Live, "status kept");
        assert_eq!(d.commodity_type, CommodityType::Digital);
        assert_eq!(d.tags, vec!["a", "b"]);
        assert_eq!(
            d.extras,
            json!({"template:f:x": "1", "template:f:y": "2", "admin_attributes": {"n": "1"}})
        );
        let created = update.resolve(None).unwrap();
        assert_eq!(created.status, ProductStatus::Draft, "draft by default");
        assert!(created.tags.is_empty());
        assert_eq!(created.extras, json!({"template:f:y": "2", "admin_attributes": {"n": "1"}}));
    }

    #[test]
    fn statuses_and_commodity_types_parse_in_any_case() {
        for s in ["draft", "Live", "LIVE"] {
            assert!(ProductStatus::parse(s).is_some());
        }
        assert_eq!(CommodityType::parse("PHYSICAL"), Some(CommodityType::Physical));
    }
}
