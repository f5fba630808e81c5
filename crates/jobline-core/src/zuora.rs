//! Zuora custom objects as values: a definition's schema, record validation, and the filters
//! bulk delete jobs and record queries use (`shared/spec/vendor-apis.md` C.5, C.11, C.12).
//!
//! The rules live here, with no I/O, so the HTTP records endpoints and the bulk job handler
//! validate a record the same way and report the same codes and messages. This module must
//! never talk to a database or know about HTTP status codes; codes here are Zuora's 8-digit
//! error codes, which both the job's error list and the HTTP error body carry.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// The system fields every record has (C.11); they are set by the server and are filterable.
pub const SYSTEM_FIELDS: [&str; 5] =
    ["Id", "CreatedById", "CreatedDate", "UpdatedById", "UpdatedDate"];

/// Zuora's record error codes (C.9, C.12): resource `710125` + category.
pub mod codes {
    /// A value of the wrong type or format (category 20).
    pub const INVALID_VALUE: i64 = 71012520;
    /// A field the definition does not have (category 21).
    pub const UNKNOWN_FIELD: i64 = 71012521;
    /// A required field is missing (category 22).
    pub const MISSING_FIELD: i64 = 71012522;
    /// A required parameter (an update row's `Id`) is missing (category 23).
    pub const MISSING_PARAMETER: i64 = 71012523;
    /// A unique value already taken (business rule, category 30).
    pub const DUPLICATE_VALUE: i64 = 71012530;
    /// The record to update or delete does not exist (category 40).
    pub const RECORD_NOT_FOUND: i64 = 71012540;
    /// Definitions: jobline's choice of resource `710110` (Zuora documents none), invalid value.
    pub const DEFINITION_INVALID: i64 = 71011020;
    /// Definitions: a required key is missing.
    pub const DEFINITION_MISSING: i64 = 71011022;
    /// Definitions: the object exists already, or still has records.
    pub const DEFINITION_CONFLICT: i64 = 71011030;
}

/// One broken rule, with Zuora's code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    /// Zuora's 8-digit code.
    pub code: i64,
    /// The message, worded as Zuora words it.
    pub message: String,
}

impl FieldError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

/// The type of a custom field (C.11: JSON-schema `type` plus `format` / `enum`).
#[derive(Debug, Clone, PartialEq)]
pub enum FieldType {
    /// Plain text of at most this many characters.
    Text {
        /// `maxLength` (default 512).
        max_len: usize,
    },
    /// Whole number.
    Integer,
    /// Decimal number.
    Number,
    /// `true` / `false`.
    Boolean,
    /// `YYYY-MM-DD`.
    Date,
    /// ISO-8601 date-time.
    DateTime,
    /// A UUID.
    Uuid,
    /// An e-mail address.
    Email,
    /// A URL.
    Url,
    /// One of the listed values.
    Picklist(Vec<String>),
}

impl FieldType {
    fn name(&self) -> &'static str {
        match self {
            FieldType::Integer => "an integer",
            FieldType::Number => "a number",
            FieldType::Boolean => "a boolean",
            _ => "a string",
        }
    }
}

/// A parsed, checked definition schema (the `schema` of C.11).
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectSchema {
    /// The object's API name.
    pub object: String,
    /// Custom fields by API name.
    pub fields: BTreeMap<String, FieldType>,
    /// Fields that must be present on create.
    pub required: BTreeSet<String>,
    /// Fields that may be filtered on (system fields always may).
    pub filterable: BTreeSet<String>,
    /// Fields whose values are unique within the object.
    pub unique: BTreeSet<String>,
    /// The schema as the client sent it, with the system fields added (rendered back as is).
    pub document: Value,
}

fn definition_error(message: impl Into<String>) -> FieldError {
    FieldError::new(codes::DEFINITION_INVALID, message)
}

fn string_list(schema: &Map<String, Value>, key: &str) -> Result<BTreeSet<String>, FieldError> {
    match schema.get(key) {
        None | Some(Value::Null) => Ok(BTreeSet::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| definition_error(format!("{key} must list field names")))
            })
            .collect(),
        Some(_) => Err(definition_error(format!("{key} must be an array of field names"))),
    }
}

impl ObjectSchema {
    /// Parses and checks a definition as sent in `POST /objects/definitions/default` under
    /// `definitions.<name>`, applying the limits of C.11.
    pub fn parse(name: &str, doc: &Value) -> Result<Self, FieldError> {
        let schema =
            doc.as_object().ok_or_else(|| definition_error("a definition must be an object"))?;
        let object = match schema.get("object") {
            Some(Value::String(s)) => s.clone(),
            None => name.to_owned(),
            Some(_) => return Err(definition_error("object must be a string")),
        };
        if object != name {
            return Err(definition_error(format!(
                "object {object:?} does not match its key {name:?}"
            )));
        }
        if object.is_empty()
            || object.len() > 64
            || !object.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(definition_error(format!(
                "object API name {object:?} must be 1 to 64 letters, digits or underscores"
            )));
        }
        match schema.get("label") {
            Some(Value::String(l)) if !l.is_empty() && l.chars().count() <= 64 => {}
            Some(_) => {
                return Err(definition_error("label must be a string of 1 to 64 characters"))
            }
            None => return Err(FieldError::new(codes::DEFINITION_MISSING, "label is required")),
        }
        let props = schema
            .get("properties")
            .and_then(Value::as_object)
            .ok_or_else(|| FieldError::new(codes::DEFINITION_MISSING, "properties is required"))?;
        let mut fields = BTreeMap::new();
        for (field, spec) in props {
            if SYSTEM_FIELDS.contains(&field.as_str()) {
                continue; // an exported definition carries them; they are re-added below
            }
            fields.insert(field.clone(), parse_field(field, spec)?);
        }
        if fields.len() > 50 {
            return Err(definition_error("a definition has at most 50 custom fields"));
        }
        let required = string_list(schema, "required")?;
        let filterable = string_list(schema, "filterable")?;
        let unique = string_list(schema, "unique")?;
        for (key, list) in
            [("required", &required), ("filterable", &filterable), ("unique", &unique)]
        {
            if let Some(f) = list
                .iter()
                .find(|f| !fields.contains_key(*f) && !SYSTEM_FIELDS.contains(&f.as_str()))
            {
                return Err(definition_error(format!("{key} names unknown field {f:?}")));
            }
        }
        let custom_filterable =
            filterable.iter().filter(|f| !SYSTEM_FIELDS.contains(&f.as_str())).count();
        if custom_filterable > 10 {
            return Err(definition_error("at most 10 fields can be filterable"));
        }
        if unique.len() > 5 {
            return Err(definition_error("at most 5 fields can be unique"));
        }
        let mut document = schema.clone();
        document.insert("object".into(), Value::String(object.clone()));
        document.insert("type".into(), Value::String("object".into()));
        let mut properties = props.clone();
        for (f, spec) in system_properties() {
            properties.insert(f.to_owned(), spec);
        }
        for (f, spec) in properties.iter_mut() {
            if let Value::Object(m) = spec {
                let origin = if SYSTEM_FIELDS.contains(&f.as_str()) { "system" } else { "custom" };
                m.insert("origin".into(), Value::String(origin.into()));
            }
        }
        document.insert("properties".into(), Value::Object(properties));
        let mut all_filterable = filterable;
        all_filterable.extend(SYSTEM_FIELDS.iter().map(|s| (*s).to_owned()));
        document.insert(
            "filterable".into(),
            Value::from(all_filterable.iter().cloned().collect::<Vec<_>>()),
        );
        for key in ["required", "unique"] {
            if !document.contains_key(key) {
                document.insert(key.into(), Value::Array(Vec::new()));
            }
        }
        Ok(Self {
            object,
            fields,
            required,
            filterable: all_filterable,
            unique,
            document: Value::Object(document),
        })
    }

    /// Rebuilds a schema from its stored document (already checked when it was created).
    pub fn from_stored(doc: &Value) -> Result<Self, FieldError> {
        let name = doc.get("object").and_then(Value::as_str).unwrap_or_default().to_owned();
        Self::parse(&name, doc)
    }

    /// Whether `field` may be filtered on.
    pub fn is_filterable(&self, field: &str) -> bool {
        self.filterable.contains(field)
    }

    /// The type of a field, system fields included.
    pub fn field_type(&self, field: &str) -> Option<FieldType> {
        match field {
            "Id" => Some(FieldType::Uuid),
            "CreatedDate" | "UpdatedDate" => Some(FieldType::DateTime),
            "CreatedById" | "UpdatedById" => Some(FieldType::Text { max_len: 64 }),
            f => self.fields.get(f).cloned(),
        }
    }

    /// Checks a record's custom fields as a create or full replace: unknown fields, system
    /// fields, types, empty strings and required fields. Nulls are dropped (C.12: empty
    /// values are not stored). Returns the fields to store, or every broken rule.
    pub fn validate(
        &self,
        input: &Map<String, Value>,
    ) -> Result<Map<String, Value>, Vec<FieldError>> {
        let mut out = Map::new();
        let mut errors = Vec::new();
        for (field, value) in input {
            if SYSTEM_FIELDS.contains(&field.as_str()) || field == "type" {
                continue; // set by the server; a round-tripped record may carry them
            }
            let Some(ty) = self.fields.get(field) else {
                errors.push(FieldError::new(
                    codes::UNKNOWN_FIELD,
                    format!("Field [{field}] is not defined."),
                ));
                continue;
            };
            if value.is_null() {
                continue;
            }
            match check_value(field, ty, value) {
                Ok(()) => {
                    out.insert(field.clone(), value.clone());
                }
                Err(e) => errors.push(e),
            }
        }
        for field in &self.required {
            // A required field that was sent but broke a type rule is reported once, for that.
            let sent = input.get(field).is_some_and(|v| !v.is_null());
            if !SYSTEM_FIELDS.contains(&field.as_str()) && !out.contains_key(field) && !sent {
                errors.push(FieldError::new(
                    codes::MISSING_FIELD,
                    format!("Field [{field}] is required."),
                ));
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    /// Checks the fields of a partial update (a merge patch, an update row): like
    /// [`validate`](Self::validate) but only the fields given, and a `null` (which removes the
    /// field) is refused on a required field. Nulls are kept so the store removes the field.
    pub fn validate_update(
        &self,
        input: &Map<String, Value>,
    ) -> Result<Map<String, Value>, Vec<FieldError>> {
        let mut out = Map::new();
        let mut errors = Vec::new();
        for (field, value) in input {
            if SYSTEM_FIELDS.contains(&field.as_str()) || field == "type" {
                continue;
            }
            let Some(ty) = self.fields.get(field) else {
                errors.push(FieldError::new(
                    codes::UNKNOWN_FIELD,
                    format!("Field [{field}] is not defined."),
                ));
                continue;
            };
            let checked = if value.is_null() && self.required.contains(field) {
                Err(FieldError::new(codes::MISSING_FIELD, format!("Field [{field}] is required.")))
            } else if value.is_null() {
                Ok(())
            } else {
                check_value(field, ty, value)
            };
            match checked {
                Ok(()) => {
                    out.insert(field.clone(), value.clone());
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    /// Turns a CSV cell into the JSON value its field takes (an empty cell is null). A cell
    /// that does not parse stays a string, so [`validate`](Self::validate) reports it in the
    /// same words as a JSON request with the wrong type.
    pub fn csv_value(&self, field: &str, cell: &str) -> Value {
        if cell.is_empty() {
            return Value::Null;
        }
        match self.fields.get(field) {
            Some(FieldType::Integer) => {
                cell.parse::<i64>().map_or_else(|_| Value::from(cell), Value::from)
            }
            Some(FieldType::Number) => cell
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or_else(|| Value::from(cell), Value::Number),
            Some(FieldType::Boolean) => match cell.to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => Value::from(cell),
            },
            _ => Value::from(cell),
        }
    }
}

fn system_properties() -> Vec<(&'static str, Value)> {
    use serde_json::json;
    vec![
        ("Id", json!({"type": "string", "format": "uuid", "label": "Id"})),
        ("CreatedById", json!({"type": "string", "format": "uuid", "label": "CreatedById"})),
        ("CreatedDate", json!({"type": "string", "format": "date-time", "label": "CreatedDate"})),
        ("UpdatedById", json!({"type": "string", "format": "uuid", "label": "UpdatedById"})),
        ("UpdatedDate", json!({"type": "string", "format": "date-time", "label": "UpdatedDate"})),
    ]
}

fn parse_field(field: &str, spec: &Value) -> Result<FieldType, FieldError> {
    if field.is_empty() || field.len() > 64 {
        return Err(definition_error(format!(
            "field API name {field:?} must be 1 to 64 characters"
        )));
    }
    let spec = spec
        .as_object()
        .ok_or_else(|| definition_error(format!("field {field:?} must be an object")))?;
    if !spec.get("label").is_some_and(Value::is_string) {
        return Err(FieldError::new(
            codes::DEFINITION_MISSING,
            format!("field {field:?} needs a label"),
        ));
    }
    let ty = spec.get("type").and_then(Value::as_str).ok_or_else(|| {
        FieldError::new(codes::DEFINITION_MISSING, format!("field {field:?} needs a type"))
    })?;
    let format = spec.get("format").and_then(Value::as_str);
    let ty = match (ty, format) {
        ("string", _) if spec.get("enum").is_some() => {
            let options: Vec<String> = spec["enum"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default();
            if options.is_empty() || options.len() > 250 {
                return Err(definition_error(format!("picklist {field:?} needs 1 to 250 options")));
            }
            FieldType::Picklist(options)
        }
        ("string", Some("uuid")) => FieldType::Uuid,
        ("string", Some("email")) => FieldType::Email,
        ("string", Some("url")) => FieldType::Url,
        ("string", Some("date")) => FieldType::Date,
        ("string", Some("date-time")) => FieldType::DateTime,
        ("string", None) => {
            let max_len = spec.get("maxLength").and_then(Value::as_u64).unwrap_or(512);
            if max_len == 0 || max_len > 8192 {
                return Err(definition_error(format!("maxLength of {field:?} must be 1 to 8192")));
            }
            FieldType::Text { max_len: usize::try_from(max_len).unwrap_or(8192) }
        }
        ("string", Some(other)) => {
            return Err(definition_error(format!("unknown format {other:?} of field {field:?}")))
        }
        ("integer", _) => FieldType::Integer,
        ("number", _) => FieldType::Number,
        ("boolean", _) => FieldType::Boolean,
        (other, _) => {
            return Err(definition_error(format!("unknown type {other:?} of field {field:?}")))
        }
    };
    Ok(ty)
}

fn check_value(field: &str, ty: &FieldType, value: &Value) -> Result<(), FieldError> {
    let invalid = |m: String| Err(FieldError::new(codes::INVALID_VALUE, m));
    let received = match value {
        Value::String(_) => "a string",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
        Value::Null => "null",
    };
    match (ty, value) {
        (FieldType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(()),
        (FieldType::Integer, _) => {
            invalid(format!("Field [{field}] is an integer field but received {received} value."))
        }
        (FieldType::Number, Value::Number(_)) => Ok(()),
        (FieldType::Number, _) => {
            invalid(format!("Field [{field}] is a number field but received {received} value."))
        }
        (FieldType::Boolean, Value::Bool(_)) => Ok(()),
        (FieldType::Boolean, _) => {
            invalid(format!("Field [{field}] is a boolean field but received {received} value."))
        }
        (_, Value::String(s)) if s.is_empty() => {
            invalid(format!("Field [{field}] cannot accept empty string."))
        }
        (FieldType::Text { max_len }, Value::String(s)) => {
            if s.chars().count() > *max_len {
                invalid(format!(
                    "Field [{field}] exceeds the maximum length of {max_len} characters."
                ))
            } else {
                Ok(())
            }
        }
        (FieldType::Uuid, Value::String(s)) => match Uuid::parse_str(s) {
            Ok(_) => Ok(()),
            Err(_) => invalid(format!("input string \"{s}\" is not a valid UUID")),
        },
        (FieldType::Date, Value::String(s)) => match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            Ok(_) => Ok(()),
            Err(_) => invalid(format!(
                "Field [{field}] expects a date (YYYY-MM-DD) but received \"{s}\"."
            )),
        },
        (FieldType::DateTime, Value::String(s)) => match DateTime::parse_from_rfc3339(s) {
            Ok(_) => Ok(()),
            Err(_) => invalid(format!(
                "Field [{field}] expects an ISO-8601 date-time but received \"{s}\"."
            )),
        },
        (FieldType::Email, Value::String(s)) => {
            let ok = s
                .split_once('@')
                .is_some_and(|(u, d)| !u.is_empty() && d.contains('.') && !s.contains(' '));
            if ok {
                Ok(())
            } else {
                invalid(format!("Field [{field}] expects an email address but received \"{s}\"."))
            }
        }
        (FieldType::Url, Value::String(s)) => {
            let ok = (s.starts_with("http://") || s.starts_with("https://")) && !s.contains(' ');
            if ok {
                Ok(())
            } else {
                invalid(format!("Field [{field}] expects a URL but received \"{s}\"."))
            }
        }
        (FieldType::Picklist(options), Value::String(s)) => {
            if options.contains(s) {
                Ok(())
            } else {
                invalid(format!(
                    "Field [{field}] does not accept \"{s}\"; allowed values: {}.",
                    options.join(", ")
                ))
            }
        }
        _ => invalid(format!(
            "Field [{field}] is {} field but received {received} value.",
            ty.name()
        )),
    }
}

/// The key under which a unique field's value is stored (strings as they are, other JSON
/// values in their JSON text, so `1` and `"1"` do not collide on a typed field).
pub fn unique_key(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A stored custom object record.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomObjectRecord {
    /// Its id.
    pub id: Uuid,
    /// The object it is a record of.
    pub object: String,
    /// Its custom fields.
    pub fields: Map<String, Value>,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Who changed it last.
    pub updated_by: String,
    /// When.
    pub updated_at: DateTime<Utc>,
}

/// ISO-8601 UTC with milliseconds and `Z`, as Zuora writes (`2021-03-10T00:05:54.207Z`).
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl CustomObjectRecord {
    /// The record as filters and clients see it: system fields plus custom fields.
    pub fn view(&self) -> Map<String, Value> {
        let mut m = self.fields.clone();
        m.insert("Id".into(), Value::String(self.id.to_string()));
        m.insert("CreatedById".into(), Value::String(self.created_by.clone()));
        m.insert("CreatedDate".into(), Value::String(timestamp(self.created_at)));
        m.insert("UpdatedById".into(), Value::String(self.updated_by.clone()));
        m.insert("UpdatedDate".into(), Value::String(timestamp(self.updated_at)));
        m
    }
}

/// A comparison of a delete filter (C.5) or a query range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Equal.
    Eq,
    /// Greater than.
    Gt,
    /// Less than.
    Lt,
    /// Greater or equal.
    Ge,
    /// Less or equal.
    Le,
}

impl Op {
    /// Parses `EQ`, `GT`, `LT`, `GE`, `LE`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "EQ" => Op::Eq,
            "GT" => Op::Gt,
            "LT" => Op::Lt,
            "GE" => Op::Ge,
            "LE" => Op::Le,
            _ => return None,
        })
    }
}

/// What a bulk job does to an object's records (C.5's `operation`). Not [`Op`], which
/// compares a field in a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkOperation {
    /// Creates a record per row of the uploaded CSV.
    Create,
    /// Updates the record each row of the uploaded CSV names.
    Update,
    /// Deletes the records matching the job's filter (every record without one).
    Delete,
}

impl BulkOperation {
    /// Parses `create`, `update`, `delete`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "create" => BulkOperation::Create,
            "update" => BulkOperation::Update,
            "delete" => BulkOperation::Delete,
            _ => return None,
        })
    }

    /// Whether the job reads an uploaded CSV, and so waits for it before it runs; a delete
    /// job needs no file.
    pub fn reads_file(self) -> bool {
        match self {
            BulkOperation::Create | BulkOperation::Update => true,
            BulkOperation::Delete => false,
        }
    }
}

/// One condition on a field.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The field (filterable).
    pub field: String,
    /// The comparison.
    pub op: Op,
    /// The value compared with.
    pub value: Value,
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::Number(x), Value::String(y)) => x.as_f64()?.partial_cmp(&y.parse::<f64>().ok()?),
        (Value::String(x), Value::Number(y)) => x.parse::<f64>().ok()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::String(y)) => Some(x.to_string().as_str().cmp(y.as_str())),
        _ => None,
    }
}

impl Condition {
    /// Whether a record (its [`CustomObjectRecord::view`]) satisfies the condition.
    pub fn matches(&self, record: &Map<String, Value>) -> bool {
        let Some(v) = record.get(&self.field) else { return false };
        let Some(ord) = compare(v, &self.value) else { return false };
        match self.op {
            Op::Eq => ord == Ordering::Equal,
            Op::Gt => ord == Ordering::Greater,
            Op::Lt => ord == Ordering::Less,
            Op::Ge => ord != Ordering::Less,
            Op::Le => ord != Ordering::Greater,
        }
    }
}

/// A parsed `q` query of `GET /objects/records/default/{object}` (C.12, Lucene-like).
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// A condition on a field.
    Cond(Condition),
    /// `_exists_:field`.
    Exists(String),
    /// Both.
    And(Box<Query>, Box<Query>),
    /// Either.
    Or(Box<Query>, Box<Query>),
    /// Not.
    Not(Box<Query>),
}

impl Query {
    /// Whether a record view matches.
    pub fn matches(&self, record: &Map<String, Value>) -> bool {
        match self {
            Query::Cond(c) => c.matches(record),
            Query::Exists(f) => record.get(f).is_some_and(|v| !v.is_null()),
            Query::And(a, b) => a.matches(record) && b.matches(record),
            Query::Or(a, b) => a.matches(record) || b.matches(record),
            Query::Not(a) => !a.matches(record),
        }
    }

    /// Parses `q` against `schema`: only filterable fields may be named. Supports
    /// `field:value`, `field:"quoted value"`, `field:[a TO b]`, `field:<x` (`<=`, `>`, `>=`),
    /// `_exists_:field`, `AND`/`&&`, `OR`/`||`, `NOT`/`!`, parentheses; juxtaposed terms AND.
    pub fn parse(q: &str, schema: &ObjectSchema) -> Result<Query, FieldError> {
        let tokens = tokenize(q)?;
        let mut p = Parser { tokens, pos: 0, schema };
        let query = p.or()?;
        if p.pos != p.tokens.len() {
            return Err(query_error(format!("unexpected {:?} in query", p.tokens[p.pos])));
        }
        Ok(query)
    }
}

fn query_error(m: String) -> FieldError {
    FieldError::new(codes::INVALID_VALUE, m)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    And,
    Or,
    Not,
    Open,
    Close,
    Term(String),
}

fn tokenize(q: &str) -> Result<Vec<Tok>, FieldError> {
    let mut out = Vec::new();
    let chars: Vec<char> = q.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push(Tok::Open);
            i += 1;
        } else if c == ')' {
            out.push(Tok::Close);
            i += 1;
        } else if c == '!' {
            out.push(Tok::Not);
            i += 1;
        } else if chars[i..].starts_with(&['&', '&']) {
            out.push(Tok::And);
            i += 2;
        } else if chars[i..].starts_with(&['|', '|']) {
            out.push(Tok::Or);
            i += 2;
        } else {
            // A term runs to whitespace or ')' outside quotes and brackets.
            let mut term = String::new();
            let (mut quoted, mut bracket) = (false, false);
            while i < chars.len() {
                let c = chars[i];
                if c == '"' {
                    quoted = !quoted;
                } else if !quoted && c == '[' {
                    bracket = true;
                } else if !quoted && c == ']' {
                    bracket = false;
                } else if !quoted && !bracket && (c.is_whitespace() || c == ')') {
                    break;
                }
                term.push(c);
                i += 1;
            }
            if quoted || bracket {
                return Err(query_error(format!("unterminated term {term:?}")));
            }
            out.push(match term.as_str() {
                "AND" => Tok::And,
                "OR" => Tok::Or,
                "NOT" => Tok::Not,
                _ => Tok::Term(term),
            });
        }
    }
    Ok(out)
}

struct Parser<'a> {
    tokens: Vec<Tok>,
    pos: usize,
    schema: &'a ObjectSchema,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos)
    }

    fn or(&mut self) -> Result<Query, FieldError> {
        let mut left = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            left = Query::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Query, FieldError> {
        let mut left = self.unary()?;
        loop {
            match self.peek() {
                Some(Tok::And) => self.pos += 1,
                Some(Tok::Term(_) | Tok::Not | Tok::Open) => {}
                _ => return Ok(left),
            }
            left = Query::And(Box::new(left), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Query, FieldError> {
        match self.tokens.get(self.pos).cloned() {
            Some(Tok::Not) => {
                self.pos += 1;
                Ok(Query::Not(Box::new(self.unary()?)))
            }
            Some(Tok::Open) => {
                self.pos += 1;
                let q = self.or()?;
                if self.peek() != Some(&Tok::Close) {
                    return Err(query_error("missing ')' in query".into()));
                }
                self.pos += 1;
                Ok(q)
            }
            Some(Tok::Term(t)) => {
                self.pos += 1;
                self.term(&t)
            }
            other => Err(query_error(format!("unexpected {other:?} in query"))),
        }
    }

    fn term(&self, t: &str) -> Result<Query, FieldError> {
        let (field, raw) = t
            .split_once(':')
            .ok_or_else(|| query_error(format!("expected field:value, got {t:?}")))?;
        if field == "_exists_" {
            self.check_field(raw)?;
            return Ok(Query::Exists(raw.to_owned()));
        }
        self.check_field(field)?;
        let cond = |op, v: &str| {
            Query::Cond(Condition { field: field.to_owned(), op, value: self.typed(field, v) })
        };
        if let Some(range) = raw.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            let (lo, hi) = range
                .split_once(" TO ")
                .ok_or_else(|| query_error(format!("expected [a TO b], got {raw:?}")))?;
            let (lo, hi) = (lo.trim(), hi.trim());
            return Ok(match (lo, hi) {
                ("*", "*") => Query::Exists(field.to_owned()),
                ("*", hi) => cond(Op::Le, hi),
                (lo, "*") => cond(Op::Ge, lo),
                (lo, hi) => Query::And(Box::new(cond(Op::Ge, lo)), Box::new(cond(Op::Le, hi))),
            });
        }
        for (prefix, op) in [("<=", Op::Le), (">=", Op::Ge), ("<", Op::Lt), (">", Op::Gt)] {
            if let Some(v) = raw.strip_prefix(prefix) {
                return Ok(cond(op, v));
            }
        }
        Ok(cond(Op::Eq, raw))
    }

    fn check_field(&self, field: &str) -> Result<(), FieldError> {
        if self.schema.is_filterable(field) {
            Ok(())
        } else {
            Err(query_error(format!("Field [{field}] is not filterable.")))
        }
    }

    fn typed(&self, field: &str, v: &str) -> Value {
        let v = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(v);
        self.schema.csv_value(field, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vehicle() -> ObjectSchema {
        ObjectSchema::parse(
            "vehicle",
            &json!({"object": "vehicle", "label": "Vehicle",
                "properties": {
                    "vin__c": {"type": "string", "label": "VIN", "maxLength": 17},
                    "year__c": {"type": "integer", "label": "Year"},
                    "owner__c": {"type": "string", "format": "uuid", "label": "Owner"},
                    "color__c": {"type": "string", "enum": ["red", "blue"], "label": "Color"}},
                "required": ["vin__c"], "filterable": ["vin__c", "year__c"], "unique": ["vin__c"]}),
        )
        .unwrap()
    }

    #[test]
    fn definitions_get_system_fields_and_check_limits() {
        let s = vehicle();
        assert!(s.document["properties"]["Id"].is_object());
        assert_eq!(s.document["properties"]["vin__c"]["origin"], "custom");
        assert!(s.is_filterable("CreatedDate") && s.is_filterable("year__c"));
        let bad = ObjectSchema::parse(
            "x",
            &json!({"label": "X", "properties": {"a": {"type": "blob", "label": "A"}}}),
        );
        assert_eq!(bad.unwrap_err().code, codes::DEFINITION_INVALID);
        let no_label = ObjectSchema::parse("x", &json!({"properties": {}}));
        assert_eq!(no_label.unwrap_err().code, codes::DEFINITION_MISSING);
        assert_eq!(ObjectSchema::from_stored(&s.document).unwrap().fields, s.fields);
    }

    #[test]
    fn records_are_checked_with_zuora_codes_and_messages() {
        let s = vehicle();
        let check = |v: Value| s.validate(v.as_object().unwrap()).map_err(|e| e[0].clone());
        assert!(check(json!({"vin__c": "V1", "year__c": 2020, "color__c": "red"})).is_ok());
        let e = check(json!({"vin__c": "V1", "year__c": "2020"})).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                codes::INVALID_VALUE,
                "Field [year__c] is an integer field but received a string value."
            )
        );
        let e = check(json!({"vin__c": ""})).unwrap_err();
        assert_eq!(e.message, "Field [vin__c] cannot accept empty string.");
        let e = check(json!({"vin__c": "V", "owner__c": "123"})).unwrap_err();
        assert_eq!(e.message, "input string \"123\" is not a valid UUID");
        assert_eq!(check(json!({"year__c": 1})).unwrap_err().code, codes::MISSING_FIELD);
        assert_eq!(
            check(json!({"vin__c": "V", "nope": 1})).unwrap_err().code,
            codes::UNKNOWN_FIELD
        );
        assert_eq!(s.csv_value("year__c", "12"), json!(12));
        assert_eq!(s.csv_value("year__c", "x"), json!("x"));
        assert_eq!(s.csv_value("vin__c", ""), Value::Null);
    }

    #[test]
    fn queries_parse_and_match() {
        let s = vehicle();
        let rec = json!({"vin__c": "V1", "year__c": 2020}).as_object().unwrap().clone();
        for (q, want) in [
            ("vin__c:V1", true),
            ("vin__c:V2", false),
            ("year__c:[2019 TO 2021]", true),
            ("year__c:<2020", false),
            ("year__c:<=2020 AND vin__c:V1", true),
            ("vin__c:V2 OR year__c:>2019", true),
            ("NOT vin__c:V1", false),
            ("!(vin__c:V2 || year__c:2000)", true),
            ("_exists_:year__c && vin__c:\"V1\"", true),
        ] {
            assert_eq!(Query::parse(q, &s).unwrap().matches(&rec), want, "{q}");
        }
        assert!(Query::parse("color__c:red", &s).is_err(), "not filterable");
        assert!(Query::parse("vin__c:[1 TO", &s).is_err());
    }

    #[test]
    fn conditions_compare_by_type() {
        let rec =
            json!({"CreatedDate": "2021-01-01T00:00:00.000Z", "n": 5}).as_object().unwrap().clone();
        let c = |f: &str, op, v| Condition { field: f.into(), op, value: v }.matches(&rec);
        assert!(c("CreatedDate", Op::Lt, json!("2022-01-01T00:00:00.000Z")));
        assert!(
            c("n", Op::Ge, json!(5)) && !c("n", Op::Gt, json!(5)) && c("n", Op::Eq, json!("5"))
        );
        assert!(!c("missing", Op::Eq, json!(1)));
    }

    #[test]
    fn bulk_operations_parse_their_lower_case_names_only() {
        for (word, op, reads_file) in [
            ("create", BulkOperation::Create, true),
            ("update", BulkOperation::Update, true),
            ("delete", BulkOperation::Delete, false),
        ] {
            assert_eq!(BulkOperation::parse(word), Some(op));
            assert_eq!(op.reads_file(), reads_file, "{word}");
        }
        assert_eq!(BulkOperation::parse("Delete"), None);
        assert_eq!(BulkOperation::parse("upsert"), None);
    }
}
