//! The catalog's update rule as functions: "`None` keeps, `Some("")` or `Some(Value::Null)`
//! clears, anything else replaces", and the key-by-key merge of `extras`. Every entity's update
//! and the store's import paths call these, so a partial update and a CSV row behave alike.

use serde_json::{Map, Value};

/// The import cell value that deletes an attribute key on update (A.8); ignored on create.
pub const REMOVE_ATTRIBUTE: &str = "__REMOVE_ATTRIBUTE__";

/// The `extras` keys whose values are maps merged key by key on update, not replaced whole.
pub(super) const ATTRIBUTE_FAMILIES: [&str; 2] = ["shopper_attributes", "admin_attributes"];

/// An optional text field after the `Some("")`-clears rule.
pub(super) fn given(v: &Option<String>) -> Option<Option<&str>> {
    v.as_deref().map(|s| (!s.is_empty()).then_some(s))
}

/// The value to store for an optional text field under the catalog's update rule: `None` keeps
/// `current` (pass `None` on create), `Some("")` clears, anything else replaces.
pub fn merge_text(input: &Option<String>, current: Option<&String>) -> Option<String> {
    match given(input) {
        Some(v) => v.map(str::to_owned),
        None => current.cloned(),
    }
}

/// The value to store for an optional JSON field under the catalog's update rule: `None` keeps
/// `current` (pass `None` on create), `Some(Value::Null)` clears, anything else replaces.
pub fn merge_json(input: &Option<Value>, current: Option<&Value>) -> Option<Value> {
    match input {
        Some(Value::Null) => None,
        Some(v) => Some(v.clone()),
        None => current.cloned(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn null_extras_keys_are_removed_on_update() {
        let merged = merge_extras(&json!({"a": 1, "b": 2}), &json!({"a": null, "c": 3}));
        assert_eq!(merged, json!({"b": 2, "c": 3}));
        assert_eq!(new_extras(&Value::Null), json!({}));
    }
}
