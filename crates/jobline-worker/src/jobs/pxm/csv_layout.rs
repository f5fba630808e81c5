//! The product CSV layout that import and export share, so an exported file re-imports
//! cleanly (A.8, A.9): the column names, how headers are recognised, and how tags, template
//! columns and attributes sit in cells.
//!
//! Decisions where the vendor is silent:
//! - Tags are one cell separated by `,` (the csv writer quotes the cell). A tag can never hold a
//!   comma or a space (A.8), so the separator is unambiguous; spaces around tags are ignored.
//! - `main_image_id` and `template:<flow>:<field>` cells live in the product's `extras` under
//!   those keys; an empty cell removes the key (so an export of a product without it
//!   round-trips), `shopper_attributes.<k>`/`admin_attributes.<k>` cells are the attribute maps,
//!   where an empty cell is the empty string and `__REMOVE_ATTRIBUTE__` deletes (A.8).

/// The fixed columns, in export order.
pub(super) const FIXED: [&str; 12] = [
    "id",
    "external_ref",
    "name",
    "description",
    "slug",
    "status",
    "commodity_type",
    "upc_ean",
    "mpn",
    "sku",
    "tags",
    "main_image_id",
];

/// Headers an import file must have (A.8's "req" column).
pub(super) const REQUIRED: [&str; 5] = ["name", "description", "slug", "status", "commodity_type"];

/// The separator of tags inside the `tags` cell.
pub(super) const TAG_SEPARATOR: char = ',';

/// The `extras` key of `main_image_id`.
pub(super) const MAIN_IMAGE: &str = "main_image_id";

/// Informational export columns, ignored on import (A.9).
pub(super) const CREATED_AT: &str = "_created_at";
/// See [`CREATED_AT`].
pub(super) const UPDATED_AT: &str = "_updated_at";

/// The attribute families a column may address as `<family>.<key>`.
pub(super) const FAMILIES: [&str; 2] = ["shopper_attributes", "admin_attributes"];

/// What a header names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Column {
    /// One of [`FIXED`].
    Fixed(&'static str),
    /// A template (flow) field, as its `extras` key `template:<flow>:<field>`.
    Template(String),
    /// A key of an attribute family.
    Attribute { family: &'static str, key: String },
    /// Anything else (informational `_created_at`, unknown columns): read and ignored.
    Ignored,
}

/// Recognises a header: fixed names case-insensitively and trimmed; `template:` columns with
/// spaces around the `:` trimmed (EP's own example file has `template: <id>: condition`,
/// A.8), keeping the flow and field as written; attribute columns by their family prefix, in
/// any case, keeping the key as written.
pub(super) fn classify(raw: &str) -> Column {
    let name = raw.trim();
    let lower = name.to_ascii_lowercase();
    if let Some(fixed) = FIXED.iter().find(|f| **f == lower) {
        return Column::Fixed(fixed);
    }
    let parts: Vec<&str> = name.split(':').map(str::trim).collect();
    if parts.len() == 3 && parts[0].eq_ignore_ascii_case("template") {
        let (flow, field) = (parts[1], parts[2]);
        // Export-only timestamps of a template (A.9) are informational.
        let info = ["created_at", "updated_at"].iter().any(|t| field.eq_ignore_ascii_case(t));
        if flow.is_empty() || field.is_empty() || info {
            return Column::Ignored;
        }
        return Column::Template(template_key(flow, field));
    }
    for family in FAMILIES {
        let prefix = format!("{family}.");
        if lower.starts_with(&prefix) {
            let key = name[prefix.len()..].trim();
            if !key.is_empty() {
                return Column::Attribute { family, key: key.to_owned() };
            }
        }
    }
    Column::Ignored
}

/// The `extras` key of a template field.
pub(super) fn template_key(flow: &str, field: &str) -> String {
    format!("template:{flow}:{field}")
}

/// The tags of a `tags` cell.
pub(super) fn split_tags(cell: &str) -> Vec<String> {
    cell.split(TAG_SEPARATOR).map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect()
}

/// The `tags` cell of a list of tags.
pub(super) fn join_tags(tags: &[String]) -> String {
    tags.join(&TAG_SEPARATOR.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_recognised_in_any_case_and_spacing() {
        for (raw, want) in [
            (" Name ", Column::Fixed("name")),
            ("SKU", Column::Fixed("sku")),
            (
                "template: 802729a1: condition",
                Column::Template("template:802729a1:condition".into()),
            ),
            ("TEMPLATE:f:Field", Column::Template("template:f:Field".into())),
            ("template:f:created_at", Column::Ignored),
            (
                "Admin_Attributes.Colour",
                Column::Attribute { family: "admin_attributes", key: "Colour".into() },
            ),
            ("shopper_attributes.", Column::Ignored),
            ("_created_at", Column::Ignored),
            ("whatever", Column::Ignored),
        ] {
            assert_eq!(classify(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn tags_split_on_commas_and_join_back() {
        assert_eq!(split_tags(" a, b ,,c"), vec!["a", "b", "c"]);
        assert!(split_tags("").is_empty());
        assert_eq!(join_tags(&split_tags("a,b")), "a,b");
    }
}
