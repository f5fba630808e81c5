//! Reading JSON:API request documents (`{"data": {"type", "id"?, "attributes": {…}}}`) the
//! way `@elasticpath/js-sdk` sends them (`shared/spec/sdk-clients.md` §1.4), with type errors
//! reported as 422 naming the field (`data.attributes.name`).

use crate::ep::error::EpError;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// A request document with one resource.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Document {
    /// The resource.
    pub data: Resource,
}

/// A request document with a list of resource identifiers (relationship bodies); a single
/// object is accepted too.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Identifiers {
    /// The identifiers.
    pub data: OneOrMany,
}

/// One identifier or several.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A list.
    Many(Vec<Resource>),
    /// A single one.
    One(Resource),
}

impl Identifiers {
    /// The ids given.
    pub fn ids(&self) -> Result<Vec<String>, EpError> {
        let list: Vec<&Resource> = match &self.data {
            OneOrMany::Many(v) => v.iter().collect(),
            OneOrMany::One(r) => vec![r],
        };
        list.into_iter()
            .map(|r| r.id.clone().ok_or_else(|| EpError::invalid("data.id", "data.id is required")))
            .collect()
    }
}

/// A resource object of a request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Resource {
    /// `type`, if sent.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `id`, if sent.
    pub id: Option<String>,
    /// `attributes`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    /// `relationships`, if sent.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub relationships: Map<String, Value>,
    /// `meta`, if sent.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub meta: Map<String, Value>,
}

fn field(name: &str) -> String {
    format!("data.attributes.{name}")
}

/// A required or optional string attribute; `null` reads as an empty string (clears it).
pub fn string(name: &str, v: &Value) -> Result<String, EpError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        _ => Err(EpError::invalid(field(name), format!("{} must be a string", field(name)))),
    }
}

/// An integer attribute.
pub fn integer(name: &str, v: &Value) -> Result<Option<i64>, EpError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_i64().map(Some).ok_or_else(|| {
            EpError::invalid(field(name), format!("{} must be an integer", field(name)))
        }),
        _ => Err(EpError::invalid(field(name), format!("{} must be an integer", field(name)))),
    }
}

/// A boolean attribute.
pub fn boolean(name: &str, v: &Value) -> Result<bool, EpError> {
    v.as_bool().ok_or_else(|| {
        EpError::invalid(field(name), format!("{} must be true or false", field(name)))
    })
}

/// A list of strings.
pub fn strings(name: &str, v: &Value) -> Result<Vec<String>, EpError> {
    let bad =
        || EpError::invalid(field(name), format!("{} must be a list of strings", field(name)));
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => {
            items.iter().map(|i| i.as_str().map(str::to_owned).ok_or_else(bad)).collect()
        }
        _ => Err(bad()),
    }
}

/// The id inside a to-one relationship `{"data": {"type", "id"}}`, if given.
pub fn related_id(relationships: &Map<String, Value>, name: &str) -> Option<String> {
    relationships.get(name)?.get("data")?.get("id")?.as_str().map(str::to_owned)
}
