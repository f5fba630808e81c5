//! Field rules that several catalog inputs share (names, slugs, external keys, attribute maps),
//! and the EP field names their errors carry. They live here once so that a product, a node and
//! a price refuse the same bad value with the same message.

use serde_json::Value;

use super::merge::{given, ATTRIBUTE_FAMILIES};
use crate::error::ValidationError;

/// Most characters an `external_ref` may have (A.8).
pub const MAX_EXTERNAL_REF: usize = 2048;
/// Most keys of `admin_attributes` or `shopper_attributes` (A.12).
pub const MAX_ATTRIBUTES: usize = 100;
/// Longest hierarchy or node name (A.10).
pub const MAX_HIERARCHY_NAME: usize = 1000;

/// EP's name for a product attribute in errors (A.5: `data.attributes.sku`).
pub(super) fn attr(name: &str) -> String {
    format!("data.attributes.{name}")
}

/// Whether `s` is a non-empty slug of letters, digits, `.`, `-` and `_`.
pub fn is_url_safe(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// What a slug may contain, as errors say it.
pub(super) const SLUG_RULE: &str = "must contain only letters, digits, '.', '-' and '_'";

/// `extras` must be an object (or null), and each attribute family in it an object of at most
/// [`MAX_ATTRIBUTES`] keys.
pub(super) fn check_extras(extras: &Value, errors: &mut Vec<ValidationError>) {
    let Some(map) = extras.as_object() else {
        if !extras.is_null() {
            errors.push(ValidationError::new("data.attributes", "extras must be a json object"));
        }
        return;
    };
    for family in ATTRIBUTE_FAMILIES {
        check_attributes(family, map.get(family), errors);
    }
}

/// An attribute map named `name` (`admin_attributes`, `shopper_attributes`), when given and not
/// null, is an object of at most [`MAX_ATTRIBUTES`] keys. A product keeps its maps inside
/// `extras` and a price in fields of its own, but the rule is one.
pub(super) fn check_attributes(name: &str, v: Option<&Value>, errors: &mut Vec<ValidationError>) {
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Object(attrs)) if attrs.len() > MAX_ATTRIBUTES => {
            errors.push(ValidationError::new(
                attr(name),
                format!("must have at most {MAX_ATTRIBUTES} keys, got {}", attrs.len()),
            ));
        }
        Some(Value::Object(_)) => {}
        Some(_) => errors.push(ValidationError::new(attr(name), "must be an object")),
    }
}

/// An external key, when given, is at most [`MAX_EXTERNAL_REF`] characters.
pub(super) fn check_external_ref(
    field: &str,
    v: &Option<String>,
    errors: &mut Vec<ValidationError>,
) {
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

/// A name of a hierarchy, node, variation or option: not blank, at most
/// [`MAX_HIERARCHY_NAME`] characters.
pub(super) fn check_name(name: &str, errors: &mut Vec<ValidationError>) {
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

/// A slug, when given and not empty, is URL-safe.
pub(super) fn check_optional_slug(slug: &Option<String>, errors: &mut Vec<ValidationError>) {
    if let Some(Some(s)) = given(slug) {
        if !is_url_safe(s) {
            errors.push(ValidationError::new(attr("slug"), format!("{SLUG_RULE} (got {s:?})")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    #[test]
    fn attribute_maps_are_objects_of_at_most_100_keys() {
        let keys = |n: usize| Value::Object((0..n).map(|i| (i.to_string(), json!(i))).collect());
        let cases: [(Option<Value>, Option<&str>); 6] = [
            (None, None),
            (Some(Value::Null), None),
            (Some(Value::Object(Map::new())), None),
            (Some(keys(100)), None),
            (
                Some(keys(101)),
                Some("data.attributes.admin_attributes: must have at most 100 keys, got 101"),
            ),
            (Some(json!("x")), Some("data.attributes.admin_attributes: must be an object")),
        ];
        for (v, want) in cases {
            let mut errors = Vec::new();
            check_attributes("admin_attributes", v.as_ref(), &mut errors);
            let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
            assert_eq!(got, want.into_iter().map(str::to_owned).collect::<Vec<_>>(), "{v:?}");
        }
    }
}
