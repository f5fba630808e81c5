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

use crate::error::ValidationError;
use crate::ids::TenantId;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::fmt;
use uuid::Uuid;

/// Most characters an `external_ref` may have (A.8).
pub const MAX_EXTERNAL_REF: usize = 2048;
/// Most tags a product may carry (A.8).
pub const MAX_TAGS: usize = 20;
/// Longest tag, in characters (A.8).
pub const MAX_TAG_LEN: usize = 255;
/// Most keys of `admin_attributes` or `shopper_attributes` (A.12).
pub const MAX_ATTRIBUTES: usize = 100;
/// Longest hierarchy or node name (A.10).
pub const MAX_HIERARCHY_NAME: usize = 1000;
/// Most child products one build may produce. The vendor documents no limit; this one keeps a
/// product with many variations from filling the database by accident.
pub const MAX_CHILDREN: usize = 10_000;
/// The import cell value that deletes an attribute key on update (A.8); ignored on create.
pub const REMOVE_ATTRIBUTE: &str = "__REMOVE_ATTRIBUTE__";

/// The `extras` keys whose values are maps merged key by key on update, not replaced whole.
const ATTRIBUTE_FAMILIES: [&str; 2] = ["shopper_attributes", "admin_attributes"];

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

/// EP's name for a product attribute in errors (A.5: `data.attributes.sku`).
fn attr(name: &str) -> String {
    format!("data.attributes.{name}")
}

/// Whether `s` is a non-empty slug of letters, digits, `.`, `-` and `_`.
pub fn is_url_safe(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

const SLUG_RULE: &str = "must contain only letters, digits, '.', '-' and '_'";

/// An optional text field after the `Some("")`-clears rule.
fn given(v: &Option<String>) -> Option<Option<&str>> {
    v.as_deref().map(|s| (!s.is_empty()).then_some(s))
}

/// The value to store for an optional text field under the module's rule: `None` keeps
/// `current` (pass `None` on create), `Some("")` clears, anything else replaces.
pub fn merge_text(input: &Option<String>, current: Option<&String>) -> Option<String> {
    match given(input) {
        Some(v) => v.map(str::to_owned),
        None => current.cloned(),
    }
}

/// The value to store for an optional JSON field under the module's rule: `None` keeps
/// `current` (pass `None` on create), `Some(Value::Null)` clears, anything else replaces.
pub fn merge_json(input: &Option<Value>, current: Option<&Value>) -> Option<Value> {
    match input {
        Some(Value::Null) => None,
        Some(v) => Some(v.clone()),
        None => current.cloned(),
    }
}

fn check_extras(extras: &Value, errors: &mut Vec<ValidationError>) {
    let Some(map) = extras.as_object() else {
        if !extras.is_null() {
            errors.push(ValidationError::new("data.attributes", "extras must be a json object"));
        }
        return;
    };
    for family in ATTRIBUTE_FAMILIES {
        match map.get(family) {
            None | Some(Value::Null) => {}
            Some(Value::Object(attrs)) if attrs.len() > MAX_ATTRIBUTES => {
                errors.push(ValidationError::new(
                    attr(family),
                    format!("must have at most {MAX_ATTRIBUTES} keys, got {}", attrs.len()),
                ))
            }
            Some(Value::Object(_)) => {}
            Some(_) => errors.push(ValidationError::new(attr(family), "must be an object")),
        }
    }
}

fn check_external_ref(field: &str, v: &Option<String>, errors: &mut Vec<ValidationError>) {
    if let Some(r) = v {
        let n = r.chars().count();
        if n > MAX_EXTERNAL_REF {
            errors.push(ValidationError::new(
                field,
                format!("must be at most {MAX_EXTERNAL_REF} characters, got {n}"),
            ));
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
    /// the module's "None keeps" rule. Fails with every rule the input breaks.
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

/// The `extras` of a new record: the object as given, without `null` keys and without
/// attributes set to the removal sentinel (which means nothing on create, A.8).
pub fn new_extras(given: &Value) -> Value {
    merge_extras(&Value::Object(Map::new()), given)
}

/// The `extras` after an update: keys of `update` replace those of `current`, `null` removes a
/// key, and the attribute families are merged key by key, where the value
/// `__REMOVE_ATTRIBUTE__` removes a key.
pub fn merge_extras(current: &Value, update: &Value) -> Value {
    let mut out = current.as_object().cloned().unwrap_or_default();
    let Some(update) = update.as_object() else { return Value::Object(out) };
    for (key, value) in update {
        if value.is_null() {
            out.remove(key);
            continue;
        }
        let family = ATTRIBUTE_FAMILIES.contains(&key.as_str());
        match (family, value) {
            (true, Value::Object(attrs)) => {
                let mut merged = match out.remove(key) {
                    Some(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                for (k, v) in attrs {
                    if v.as_str() == Some(REMOVE_ATTRIBUTE) {
                        merged.remove(k);
                    } else {
                        merged.insert(k.clone(), v.clone());
                    }
                }
                out.insert(key.clone(), Value::Object(merged));
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(out)
}

/// What a build does with a combination no rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleDefault {
    /// Build it.
    Include,
    /// Skip it.
    Exclude,
}

/// A product's `build_rules`, parsed (A.11). A rule is a set of option ids; it matches a
/// combination that contains all of them. The matching rule with the most options decides; a
/// tie between an `include` and an `exclude` rule is ambiguous, and no match means the default.
/// A rule naming two options of one variation can never match, which is EP's documented
/// behaviour for such "invalid" rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRules {
    /// What happens to combinations no rule matches.
    pub default: RuleDefault,
    /// Combinations to build.
    pub include: Vec<Vec<VariationOptionId>>,
    /// Combinations to skip.
    pub exclude: Vec<Vec<VariationOptionId>>,
}

/// The error text of EP for rules that cannot decide (A.11).
pub const AMBIGUOUS_RULES: &str =
    "could not determine whether to include or exclude a child product due to ambiguous rules";

impl BuildRules {
    /// Parses the JSON form; errors name the field `data.attributes.build_rules`.
    pub fn parse(v: &Value) -> Result<Self, ValidationError> {
        let field = attr("build_rules");
        let bad = |m: String| ValidationError::new(field.clone(), m);
        let obj = v.as_object().ok_or_else(|| bad("must be an object".to_owned()))?;
        if let Some(k) =
            obj.keys().find(|k| !matches!(k.as_str(), "default" | "include" | "exclude"))
        {
            return Err(bad(format!("unknown key {k:?}")));
        }
        let default = match obj.get("default").and_then(Value::as_str) {
            Some(d) if d.eq_ignore_ascii_case("include") => RuleDefault::Include,
            Some(d) if d.eq_ignore_ascii_case("exclude") => RuleDefault::Exclude,
            Some(d) => return Err(bad(format!("default must be include or exclude (got {d:?})"))),
            None => return Err(bad("default is required".to_owned())),
        };
        let combos = |key: &str| -> Result<Vec<Vec<VariationOptionId>>, ValidationError> {
            let Some(list) = obj.get(key).filter(|l| !l.is_null()) else { return Ok(Vec::new()) };
            let list = list
                .as_array()
                .ok_or_else(|| bad(format!("{key} must be an array of arrays of option ids")))?;
            list.iter()
                .map(|combo| {
                    let ids = combo.as_array().filter(|c| !c.is_empty()).ok_or_else(|| {
                        bad(format!("{key} must hold non-empty arrays of option ids"))
                    })?;
                    ids.iter()
                        .map(|id| {
                            let s = id.as_str().unwrap_or_default();
                            VariationOptionId::parse(s).map_err(|_| {
                                bad(format!("{key}: {id} is not a valid variation option id"))
                            })
                        })
                        .collect()
                })
                .collect()
        };
        Ok(BuildRules { default, include: combos("include")?, exclude: combos("exclude")? })
    }

    /// Whether the combination of options becomes a child product.
    pub fn includes(&self, combination: &[VariationOptionId]) -> Result<bool, ValidationError> {
        let best = |rules: &[Vec<VariationOptionId>]| {
            rules
                .iter()
                .filter(|r| r.iter().all(|id| combination.contains(id)))
                .map(|r| r.iter().collect::<BTreeSet<_>>().len())
                .max()
        };
        match (best(&self.include), best(&self.exclude)) {
            (None, None) => Ok(self.default == RuleDefault::Include),
            (Some(_), None) => Ok(true),
            (None, Some(_)) => Ok(false),
            (Some(i), Some(e)) if i > e => Ok(true),
            (Some(i), Some(e)) if e > i => Ok(false),
            (Some(_), Some(_)) => Err(ValidationError::new(attr("build_rules"), AMBIGUOUS_RULES)),
        }
    }
}

/// A variation of the product being built, with its options in naming order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariationSpec {
    /// The variation.
    pub id: VariationId,
    /// Its options.
    pub options: Vec<OptionSpec>,
}

/// One option of a [`VariationSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionSpec {
    /// The option.
    pub id: VariationOptionId,
    /// Its name, used in the child's SKU and slug.
    pub name: String,
}

/// One child product a build should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildPlan {
    /// One option per variation, in the variations' order.
    pub options: Vec<VariationOptionId>,
    /// The options' names, in the same order.
    pub names: Vec<String>,
}

impl ChildPlan {
    /// The combination as stored with the child: option ids sorted and joined by commas, so
    /// the same combination always gives the same key whatever the variations' order.
    pub fn key(&self) -> String {
        combination_key(&self.options)
    }
}

/// Sorted ids joined by commas: how a child's combination (or a build's set of variations) is
/// stored and compared.
pub fn combination_key<T: fmt::Display + Ord>(ids: &[T]) -> String {
    let mut sorted: Vec<&T> = ids.iter().collect();
    sorted.sort();
    sorted.iter().map(|id| id.to_string()).collect::<Vec<_>>().join(",")
}

/// Every combination of one option per variation (the cartesian product, first variation
/// varying slowest) that `rules` include. No variations, or a variation without options,
/// gives no children.
pub fn plan_children(
    variations: &[VariationSpec],
    rules: Option<&BuildRules>,
) -> Result<Vec<ChildPlan>, ValidationError> {
    if variations.is_empty() {
        return Ok(Vec::new());
    }
    let total = variations.iter().try_fold(1usize, |n, v| n.checked_mul(v.options.len()));
    match total {
        Some(n) if n <= MAX_CHILDREN => {}
        _ => {
            return Err(ValidationError::new(
                "variations",
                format!("too many child products: the combinations exceed {MAX_CHILDREN}"),
            ))
        }
    }
    let mut combos = vec![ChildPlan { options: Vec::new(), names: Vec::new() }];
    for v in variations {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                v.options.iter().map(move |o| {
                    let mut next = c.clone();
                    next.options.push(o.id);
                    next.names.push(o.name.clone());
                    next
                })
            })
            .collect();
    }
    match rules {
        None => Ok(combos),
        Some(rules) => {
            let mut kept = Vec::with_capacity(combos.len());
            for c in combos {
                if rules.includes(&c.options)? {
                    kept.push(c);
                }
            }
            Ok(kept)
        }
    }
}

/// An option name as a slug or SKU part: trimmed, runs of whitespace turned into one `-`.
fn name_part(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join("-")
}

/// A child's slug: the parent's slug and the option names, lower case, joined by `-`. The
/// names are not transliterated: one that leaves the slug outside letters, digits, `.`, `-`
/// and `_` fails the build with EP's "slug must be URL compatible" (A.4).
pub fn child_slug(parent_slug: &str, names: &[String]) -> Result<String, ValidationError> {
    let mut slug = parent_slug.to_owned();
    for n in names {
        slug.push('-');
        slug.push_str(&name_part(n).to_lowercase());
    }
    if is_url_safe(&slug) {
        Ok(slug)
    } else {
        Err(ValidationError::new(
            attr("slug"),
            format!("slug must be URL compatible (got {slug:?})"),
        ))
    }
}

/// A child's SKU: the parent's SKU and the option names joined by `-`; none when the parent
/// has none.
pub fn child_sku(parent_sku: Option<&str>, names: &[String]) -> Option<String> {
    parent_sku.map(|sku| {
        let mut out = sku.to_owned();
        for n in names {
            out.push('-');
            out.push_str(&name_part(n));
        }
        out
    })
}

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

fn check_name(name: &str, errors: &mut Vec<ValidationError>) {
    let n = name.chars().count();
    if name.trim().is_empty() {
        errors.push(ValidationError::new(attr("name"), "must not be empty"));
    } else if n > MAX_HIERARCHY_NAME {
        errors.push(ValidationError::new(
            attr("name"),
            format!("must be at most {MAX_HIERARCHY_NAME} characters, got {n}"),
        ));
    }
}

fn check_optional_slug(slug: &Option<String>, errors: &mut Vec<ValidationError>) {
    if let Some(Some(s)) = given(slug) {
        if !is_url_safe(s) {
            errors.push(ValidationError::new(attr("slug"), format!("{SLUG_RULE} (got {s:?})")));
        }
    }
}

impl HierarchyInput {
    /// Every rule the input breaks; empty when it is valid.
    pub fn validate(&self) -> Vec<ValidationError> {
        let mut errors = Vec::new();
        check_name(&self.name, &mut errors);
        check_optional_slug(&self.slug, &mut errors);
        check_extras(&self.extras, &mut errors);
        errors
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
        let mut errors = Vec::new();
        check_name(&self.name, &mut errors);
        check_optional_slug(&self.slug, &mut errors);
        check_extras(&self.extras, &mut errors);
        errors
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
        let mut errors = Vec::new();
        check_name(&self.name, &mut errors);
        errors
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
        let mut errors = Vec::new();
        check_name(&self.name, &mut errors);
        errors
    }
}

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
            match v {
                None | Some(Value::Null) => {}
                Some(Value::Object(m)) if m.len() > MAX_ATTRIBUTES => {
                    errors.push(ValidationError::new(
                        attr(name),
                        format!("must have at most {MAX_ATTRIBUTES} keys, got {}", m.len()),
                    ));
                }
                Some(Value::Object(_)) => {}
                Some(_) => errors.push(ValidationError::new(attr(name), "must be an object")),
            }
        }
        errors
    }

    /// The external key given, if any.
    pub fn external_key(&self) -> Option<&str> {
        given(&self.external_ref).flatten()
    }
}

/// A product attribute an export filter may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProductField {
    /// `id`
    Id,
    /// `sku`
    Sku,
    /// `slug`
    Slug,
    /// `upc_ean`
    UpcEan,
    /// `manufacturer_part_num` (also accepted as `mpn`)
    Mpn,
    /// `name`
    Name,
    /// `description`
    Description,
    /// `tags`: matches when one of the product's tags matches.
    Tags,
    /// `status`
    Status,
    /// `commodity_type`
    CommodityType,
    /// `external_ref`
    ExternalRef,
    /// `parent_id`
    ParentId,
    /// `created_at` (RFC 3339 values)
    CreatedAt,
    /// `updated_at` (RFC 3339 values)
    UpdatedAt,
}

impl ProductField {
    /// Every field.
    pub const ALL: [ProductField; 14] = [
        ProductField::Id,
        ProductField::Sku,
        ProductField::Slug,
        ProductField::UpcEan,
        ProductField::Mpn,
        ProductField::Name,
        ProductField::Description,
        ProductField::Tags,
        ProductField::Status,
        ProductField::CommodityType,
        ProductField::ExternalRef,
        ProductField::ParentId,
        ProductField::CreatedAt,
        ProductField::UpdatedAt,
    ];

    /// The name EP filters use.
    pub fn as_str(self) -> &'static str {
        match self {
            ProductField::Id => "id",
            ProductField::Sku => "sku",
            ProductField::Slug => "slug",
            ProductField::UpcEan => "upc_ean",
            ProductField::Mpn => "manufacturer_part_num",
            ProductField::Name => "name",
            ProductField::Description => "description",
            ProductField::Tags => "tags",
            ProductField::Status => "status",
            ProductField::CommodityType => "commodity_type",
            ProductField::ExternalRef => "external_ref",
            ProductField::ParentId => "parent_id",
            ProductField::CreatedAt => "created_at",
            ProductField::UpdatedAt => "updated_at",
        }
    }

    /// Parses a field name as a filter spells it (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("mpn") {
            return Some(ProductField::Mpn);
        }
        Self::ALL.into_iter().find(|f| f.as_str().eq_ignore_ascii_case(s))
    }

    /// Whether values are timestamps.
    pub fn is_time(self) -> bool {
        matches!(self, ProductField::CreatedAt | ProductField::UpdatedAt)
    }

    /// Whether `op` may be used on this field. EP's 2024 and 2026 filter tables (A.9) are
    /// followed, widened where the meaning is plain (`like` on `external_ref`, ranges on text).
    pub fn allows(self, op: FilterOp) -> bool {
        use FilterOp::*;
        use ProductField::*;
        match self {
            Tags => matches!(op, Eq | In | Like),
            Status | CommodityType | ParentId => matches!(op, Eq | In),
            CreatedAt | UpdatedAt => !matches!(op, Like),
            Id | Sku | Slug | UpcEan | Mpn | Name | Description | ExternalRef => true,
        }
    }
}

impl fmt::Display for ProductField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A filter operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterOp {
    /// Equal to the one value.
    Eq,
    /// Equal to one of the values.
    In,
    /// Matches the pattern, where `*` stands for any run of characters (case-insensitive).
    Like,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Ge,
    /// Less than.
    Lt,
    /// Less than or equal.
    Le,
}

impl FilterOp {
    /// Every operator.
    pub const ALL: [FilterOp; 7] = [
        FilterOp::Eq,
        FilterOp::In,
        FilterOp::Like,
        FilterOp::Gt,
        FilterOp::Ge,
        FilterOp::Lt,
        FilterOp::Le,
    ];

    /// The name EP filters use.
    pub fn as_str(self) -> &'static str {
        match self {
            FilterOp::Eq => "eq",
            FilterOp::In => "in",
            FilterOp::Like => "like",
            FilterOp::Gt => "gt",
            FilterOp::Ge => "ge",
            FilterOp::Lt => "lt",
            FilterOp::Le => "le",
        }
    }

    /// Parses an operator name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for FilterOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One condition of a [`ProductFilter`], checked when built: the operator suits the field, the
/// number of values suits the operator, and the values suit the field (`status` is `draft` or
/// `live`, timestamps are RFC 3339). Only [`FilterClause::new`] makes one, so the store never
/// meets a malformed clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterClause {
    field: ProductField,
    op: FilterOp,
    values: Vec<String>,
    millis: Vec<i64>,
}

fn filter_error(message: String) -> ValidationError {
    ValidationError::new("filter", message)
}

impl FilterClause {
    /// A checked clause. Values of `status` and `commodity_type` are normalised to lower case.
    pub fn new(
        field: ProductField,
        op: FilterOp,
        values: Vec<String>,
    ) -> Result<Self, ValidationError> {
        if !field.allows(op) {
            return Err(filter_error(format!("operator {op} is not supported on {field}")));
        }
        match (op, values.len()) {
            (FilterOp::In, 0) => {
                return Err(filter_error(format!("in({field}, …) needs at least one value")))
            }
            (FilterOp::In, _) | (_, 1) => {}
            (_, n) => {
                return Err(filter_error(format!("{op}({field}, …) takes one value, got {n}")))
            }
        }
        let mut values = values;
        let mut millis = Vec::new();
        for v in &mut values {
            match field {
                ProductField::Status => match ProductStatus::parse(v) {
                    Some(s) => *v = s.as_str().to_owned(),
                    None => {
                        return Err(filter_error(format!(
                            "status must be draft or live, got {v:?}"
                        )))
                    }
                },
                ProductField::CommodityType => match CommodityType::parse(v) {
                    Some(c) => *v = c.as_str().to_owned(),
                    None => {
                        return Err(filter_error(format!(
                            "commodity_type must be physical or digital, got {v:?}"
                        )))
                    }
                },
                f if f.is_time() => {
                    let t = DateTime::parse_from_rfc3339(v).map_err(|_| {
                        filter_error(format!("{field} needs an RFC 3339 timestamp, got {v:?}"))
                    })?;
                    millis.push(t.timestamp_millis());
                }
                _ => {}
            }
        }
        Ok(FilterClause { field, op, values, millis })
    }

    /// The field.
    pub fn field(&self) -> ProductField {
        self.field
    }

    /// The operator.
    pub fn op(&self) -> FilterOp {
        self.op
    }

    /// The values as given (normalised for `status` and `commodity_type`).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// For `created_at`/`updated_at`: the values as Unix milliseconds (empty otherwise).
    pub fn time_values(&self) -> &[i64] {
        &self.millis
    }
}

/// Which products an export or list includes: every clause must hold (an empty filter
/// matches every product).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProductFilter {
    /// The clauses, ANDed.
    pub clauses: Vec<FilterClause>,
}

impl ProductFilter {
    /// The filter that matches every product.
    pub fn all() -> Self {
        Self::default()
    }

    /// This filter with one more clause.
    pub fn and(mut self, clause: FilterClause) -> Self {
        self.clauses.push(clause);
        self
    }
}

/// Parses EP's filter syntax (A.9): `op(field,value…)` clauses joined by `:`, such as
/// `eq(status,live):like(sku,ab*)` or `in(sku,a,"b,c")`. Values may be double-quoted (then
/// they may hold `,`, `)` and `:`, and `\"` and `\\` escape a quote and a backslash).
/// Whitespace around names and unquoted values is ignored. An empty string is the empty
/// filter. Errors name the field `filter`; EP answers them with 400 `Could not parse the
/// supplied filter`.
pub fn parse_ep_filter(s: &str) -> Result<ProductFilter, ValidationError> {
    let mut p = FilterParser { chars: s.chars().collect(), pos: 0 };
    let mut filter = ProductFilter::all();
    p.skip_ws();
    if p.at_end() {
        return Ok(filter);
    }
    loop {
        let op_name = p.word();
        let op = FilterOp::parse(&op_name)
            .ok_or_else(|| filter_error(format!("unknown operator {op_name:?}")))?;
        p.skip_ws();
        if !p.eat('(') {
            return Err(filter_error(format!("expected '(' after {op_name:?}")));
        }
        let mut args = Vec::new();
        loop {
            args.push(p.value()?);
            p.skip_ws();
            match p.next() {
                Some(',') => {}
                Some(')') => break,
                Some(c) => return Err(filter_error(format!("unexpected {c:?} in {op_name}(…)"))),
                None => return Err(filter_error(format!("missing ')' after {op_name}(…"))),
            }
        }
        let field_name = args.remove(0);
        let field = ProductField::parse(&field_name)
            .ok_or_else(|| filter_error(format!("unknown field {field_name:?}")))?;
        filter = filter.and(FilterClause::new(field, op, args)?);
        p.skip_ws();
        match p.next() {
            None => return Ok(filter),
            Some(':') => p.skip_ws(),
            Some(c) => {
                return Err(filter_error(format!("expected ':' between clauses, got {c:?}")))
            }
        }
    }
}

struct FilterParser {
    chars: Vec<char>,
    pos: usize,
}

impl FilterParser {
    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += usize::from(c.is_some());
        c
    }

    fn eat(&mut self, want: char) -> bool {
        if self.peek() == Some(want) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// An operator name: letters up to the next non-letter.
    fn word(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    /// One argument: a quoted string, or the text up to the next `,` or `)`, trimmed.
    fn value(&mut self) -> Result<String, ValidationError> {
        self.skip_ws();
        if self.eat('"') {
            let mut out = String::new();
            loop {
                match self.next() {
                    Some('\\') => match self.next() {
                        Some(c) => out.push(c),
                        None => return Err(filter_error("unterminated quoted value".to_owned())),
                    },
                    Some('"') => return Ok(out),
                    Some(c) => out.push(c),
                    None => return Err(filter_error("unterminated quoted value".to_owned())),
                }
            }
        }
        let start = self.pos;
        while self.peek().is_some_and(|c| c != ',' && c != ')') {
            self.pos += 1;
        }
        let v: String = self.chars[start..self.pos].iter().collect::<String>().trim().to_owned();
        if v.is_empty() {
            return Err(filter_error(
                "empty value (quote it as \"\" to match an empty text)".to_owned(),
            ));
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn null_extras_keys_are_removed_on_update() {
        let merged = merge_extras(&json!({"a": 1, "b": 2}), &json!({"a": null, "c": 3}));
        assert_eq!(merged, json!({"b": 2, "c": 3}));
        assert_eq!(new_extras(&Value::Null), json!({}));
    }

    fn opt(n: u128) -> VariationOptionId {
        VariationOptionId(Uuid::from_u128(n))
    }

    fn rules(v: &Value) -> BuildRules {
        BuildRules::parse(v).unwrap()
    }

    /// One helper: what the rules decide for a combination of option numbers.
    fn check_rule(r: &BuildRules, combo: &[u128], expect: Result<bool, &str>) {
        let combo: Vec<_> = combo.iter().map(|n| opt(*n)).collect();
        let got = r.includes(&combo).map_err(|e| e.message);
        assert_eq!(
            got.as_ref().map_err(String::as_str),
            expect.as_ref().map_err(|e| *e),
            "{combo:?}"
        );
    }

    #[test]
    fn build_rules_pick_the_most_specific_match() {
        let id = |n: u128| opt(n).to_string();
        // EP's scenario 3: everything but large+red, except large+red+cotton.
        let r = rules(&json!({
            "default": "include",
            "exclude": [[id(1), id(2)]],
            "include": [[id(1), id(2), id(3)]],
        }));
        check_rule(&r, &[1, 2, 3], Ok(true));
        check_rule(&r, &[1, 2, 4], Ok(false));
        check_rule(&r, &[1, 5, 4], Ok(true));
        let r = rules(&json!({"default": "exclude", "include": [[id(1)]]}));
        check_rule(&r, &[1, 2], Ok(true));
        check_rule(&r, &[5, 2], Ok(false));
        // Same size on both sides: EP's ambiguity error.
        let r = rules(&json!({"default": "include", "include": [[id(1)]], "exclude": [[id(2)]]}));
        check_rule(&r, &[1, 3], Ok(true));
        check_rule(&r, &[1, 2], Err(AMBIGUOUS_RULES));
        // A rule with two options of one variation never matches.
        let r = rules(&json!({"default": "include", "exclude": [[id(1), id(2)]]}));
        check_rule(&r, &[1, 3], Ok(true));
    }

    #[test]
    fn malformed_build_rules_are_refused() {
        for bad in [
            json!("include"),
            json!({}),
            json!({"default": "sometimes"}),
            json!({"default": "include", "include": "x"}),
            json!({"default": "include", "include": [[]]}),
            json!({"default": "include", "include": [["not-an-id"]]}),
            json!({"default": "include", "extra": 1}),
        ] {
            let err = BuildRules::parse(&bad).unwrap_err();
            assert_eq!(err.field, "data.attributes.build_rules", "{bad}");
        }
    }

    fn variation(n: u128, names: &[(u128, &str)]) -> VariationSpec {
        VariationSpec {
            id: VariationId(Uuid::from_u128(n)),
            options: names
                .iter()
                .map(|(i, name)| OptionSpec { id: opt(*i), name: (*name).into() })
                .collect(),
        }
    }

    #[test]
    fn plans_every_combination_filtered_by_rules() {
        let size = variation(100, &[(1, "Small"), (2, "Large")]);
        let color = variation(200, &[(3, "Red"), (4, "Green"), (5, "Blue")]);
        let all = plan_children(&[size.clone(), color.clone()], None).unwrap();
        assert_eq!(all.len(), 6);
        assert_eq!(all[0].names, vec!["Small", "Red"]);
        assert_eq!(all[5].names, vec!["Large", "Blue"]);
        assert_eq!(all[0].key(), combination_key(&[opt(3), opt(1)]), "key ignores order");
        let r = rules(
            &json!({"default": "include", "exclude": [[opt(2).to_string(), opt(3).to_string()]]}),
        );
        let some = plan_children(&[size.clone(), color], Some(&r)).unwrap();
        assert_eq!(some.len(), 5);
        assert!(!some.iter().any(|c| c.names == ["Large", "Red"]));
        assert!(plan_children(&[], None).unwrap().is_empty());
        assert!(plan_children(&[size, variation(300, &[])], None).unwrap().is_empty());
        let huge: Vec<_> = (0..5)
            .map(|v| variation(v, &(0..10).map(|o| (v * 100 + o, "x")).collect::<Vec<_>>()))
            .collect();
        assert!(plan_children(&huge, None).is_err(), "100,000 combinations are refused");
    }

    #[test]
    fn child_skus_and_slugs_come_from_the_option_names() {
        let names = vec!["Extra Large".to_owned(), "Red".to_owned()];
        assert_eq!(child_slug("shirt", &names).unwrap(), "shirt-extra-large-red");
        assert_eq!(child_sku(Some("SH"), &names).as_deref(), Some("SH-Extra-Large-Red"));
        assert_eq!(child_sku(None, &names), None);
        let err = child_slug("shirt", &["Größe".to_owned()]).unwrap_err();
        assert!(err.message.starts_with("slug must be URL compatible"), "{err}");
    }

    /// One helper for the filter parser: the clauses a string gives, or the error's start.
    /// The clauses a filter should parse into: field, operator and values.
    type Clauses<'a> = Vec<(ProductField, FilterOp, &'a [&'a str])>;

    fn check_filter(s: &str, expect: Result<Clauses<'_>, &str>) {
        let got = parse_ep_filter(s);
        match (got, expect) {
            (Ok(f), Ok(want)) => {
                let got: Vec<_> =
                    f.clauses.iter().map(|c| (c.field(), c.op(), c.values().to_vec())).collect();
                let want: Vec<_> = want
                    .into_iter()
                    .map(|(f, o, v)| (f, o, v.iter().map(|s| s.to_string()).collect::<Vec<_>>()))
                    .collect();
                assert_eq!(got, want, "{s}");
            }
            (Err(e), Err(prefix)) => {
                assert_eq!(e.field, "filter");
                assert!(e.message.starts_with(prefix), "{s}: {e}");
            }
            (got, want) => panic!("{s}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn ep_filters_parse_into_clauses() {
        use FilterOp::*;
        use ProductField::*;
        check_filter("", Ok(vec![]));
        check_filter("eq(sku,abc)", Ok(vec![(Sku, Eq, &["abc"])]));
        check_filter("in(sku,a,b)", Ok(vec![(Sku, In, &["a", "b"])]));
        check_filter("like(name,*shirt*)", Ok(vec![(Name, Like, &["*shirt*"])]));
        check_filter(
            "gt(created_at,2024-01-01T00:00:00Z)",
            Ok(vec![(CreatedAt, Gt, &["2024-01-01T00:00:00Z"])]),
        );
        check_filter(
            "eq(status,Live):like(sku,ab*)",
            Ok(vec![(Status, Eq, &["live"]), (Sku, Like, &["ab*"])]),
        );
        check_filter(
            r#"in(sku,"a,b","c)d",  e ):eq(name,"say \"hi\"")"#,
            Ok(vec![(Sku, In, &["a,b", "c)d", "e"]), (Name, Eq, &["say \"hi\""])]),
        );
        check_filter("eq(manufacturer_part_num,m1)", Ok(vec![(Mpn, Eq, &["m1"])]));
        check_filter("EQ(mpn,m1)", Ok(vec![(Mpn, Eq, &["m1"])]));
        check_filter("eq(tags,t1)", Ok(vec![(Tags, Eq, &["t1"])]));
        check_filter("le(external_ref,x)", Ok(vec![(ExternalRef, Le, &["x"])]));
        check_filter(r#"eq(sku,"")"#, Ok(vec![(Sku, Eq, &[""])]));
        check_filter("foo(sku,a)", Err("unknown operator"));
        check_filter("eq(colour,a)", Err("unknown field"));
        check_filter("eq(sku,a,b)", Err("eq(sku, …) takes one value"));
        check_filter("in(sku)", Err("in(sku, …) needs at least one value"));
        check_filter("like(status,l*)", Err("operator like is not supported on status"));
        check_filter("gt(tags,a)", Err("operator gt is not supported"));
        check_filter("eq(status,gone)", Err("status must be draft or live"));
        check_filter("gt(created_at,yesterday)", Err("created_at needs an RFC 3339"));
        check_filter("eq(sku,a", Err("missing ')'"));
        check_filter("eq sku", Err("expected '('"));
        check_filter(r#"eq(sku,"a)"#, Err("unterminated"));
        check_filter("eq(sku,a)eq(sku,b)", Err("expected ':'"));
        check_filter("eq(sku,a):", Err("unknown operator"));
        check_filter("eq(sku,)", Err("empty value"));
    }

    #[test]
    fn time_values_are_milliseconds() {
        let f = parse_ep_filter("ge(updated_at,2026-01-01T00:00:00.5Z)").unwrap();
        assert_eq!(f.clauses[0].time_values(), &[1_767_225_600_500]);
    }

    #[test]
    fn every_field_and_operator_name_round_trips() {
        for f in ProductField::ALL {
            assert_eq!(ProductField::parse(f.as_str()), Some(f));
        }
        for o in FilterOp::ALL {
            assert_eq!(FilterOp::parse(o.as_str()), Some(o));
        }
        for s in ["draft", "Live", "LIVE"] {
            assert!(ProductStatus::parse(s).is_some());
        }
        assert_eq!(CommodityType::parse("PHYSICAL"), Some(CommodityType::Physical));
    }

    #[test]
    fn ids_parse_only_the_canonical_form() {
        let id = ProductId::new();
        assert_eq!(ProductId::parse(&id.to_string()), Ok(id));
        assert_eq!(ProductId::parse(&id.to_string().to_uppercase()), Ok(id));
        assert!(ProductId::parse("x").is_err());
        assert!(NodeId::parse(&id.as_uuid().simple().to_string()).is_err());
    }

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
    fn names_of_hierarchies_nodes_and_price_books_are_required() {
        assert_eq!(HierarchyInput::default().validate().len(), 1);
        let long = HierarchyInput { name: "x".repeat(1001), ..Default::default() };
        assert_eq!(long.validate().len(), 1);
        let bad_slug =
            NodeInput { name: "n".into(), slug: Some("a b".into()), ..Default::default() };
        assert_eq!(bad_slug.validate()[0].field, "data.attributes.slug");
        assert!(NodeInput { name: "n".into(), slug: Some(String::new()), ..Default::default() }
            .validate()
            .is_empty());
        assert_eq!(PriceBookInput::default().validate().len(), 1);
        assert_eq!(VariationInput::default().validate().len(), 1);
        assert_eq!(VariationOptionInput::default().validate().len(), 1);
    }
}
