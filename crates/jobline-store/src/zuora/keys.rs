//! The rows of `zuora_field_values`: what a record's filterable custom fields hold, as keys whose
//! byte order is the order [`Condition::matches`](jobline_core::zuora::Condition::matches)
//! compares by, so a query condition is a key range of one index.
//!
//! `Condition::matches` compares a record's value `x` with the query's value `y` by their JSON
//! types: numbers as `f64`; a number with a string by reading the string as `f64`; strings by
//! their bytes; booleans as `false < true`, or as the words `"false"`/`"true"` against a
//! string; anything else never matches. A key is therefore a one-letter family, which says
//! which comparisons it takes part in, followed by the value:
//!
//! | family | a record's value          | compared with a query's | encoded as                    |
//! |--------|---------------------------|-------------------------|-------------------------------|
//! | `n`    | number                    | number, numeric string  | [`number`], 16 hex digits     |
//! | `m`    | string that reads as f64  | number                  | [`number`] of what it reads as |
//! | `s`    | string                    | string                  | its bytes, [`escape`]d        |
//! | `t`    | boolean                   | boolean, string         | `false` / `true`              |
//! | `x`    | array or object           | nothing (`_exists_`)    | nothing                       |
//!
//! A string that reads as a number has two rows (`s` and `m`): which one a condition meets
//! depends on the query value's type, as in `matches`. For each type of query value, a record's
//! value meets it through at most one family, which is what lets two conditions on one field
//! with values of one type be merged into one range per family (see `query.rs`).

use crate::db::{Queries, Sql, Tx};
use crate::{Backend, StoreError};
use jobline_core::zuora::SYSTEM_FIELDS;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// A record's number.
pub(super) const NUMBER: u8 = b'n';
/// A record's string, read as a number.
pub(super) const NUMERIC: u8 = b'm';
/// A record's string.
pub(super) const TEXT: u8 = b's';
/// A record's boolean.
pub(super) const BOOLEAN: u8 = b't';
/// A record's array or object: it exists, and compares with nothing.
const OTHER: u8 = b'x';

/// Text with no NUL (PostgreSQL text cannot hold one) in the same byte order: NUL becomes
/// `\x01\x01` and `\x01` becomes `\x01\x02`. The codes are prefix-free and ordered like the bytes
/// they stand for, and every other byte is kept, so two escaped strings compare as the
/// originals do.
pub(super) fn escape(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|b| b <= 1) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        match c {
            '\0' => out.push_str("\u{1}\u{1}"),
            '\u{1}' => out.push_str("\u{1}\u{2}"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `family` + `x` as 16 hex digits of its bits, mapped so that their order is the order of the
/// numbers (the sign bit flipped for positives, every bit for negatives; `-0` is `0`, as
/// `partial_cmp` has them equal). `None` for NaN, which compares with nothing.
pub(super) fn number(family: u8, x: f64) -> Option<String> {
    if x.is_nan() {
        return None;
    }
    let x = if x == 0.0 { 0.0 } else { x };
    let bits = x.to_bits();
    let ordered = if bits >> 63 == 1 { !bits } else { bits | (1 << 63) };
    Some(format!("{}{ordered:016x}", char::from(family)))
}

/// `family` + the escaped text.
pub(super) fn text(family: u8, s: &str) -> String {
    let escaped = escape(s);
    let mut out = String::with_capacity(escaped.len() + 1);
    out.push(char::from(family));
    out.push_str(&escaped);
    out
}

/// A string read as a number, as `Condition::matches` reads it.
pub(super) fn read_number(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|x| !x.is_nan())
}

/// The keys of one value of a record (none for null).
pub(super) fn stored(value: &Value) -> impl Iterator<Item = String> {
    let (first, second) = match value {
        Value::Null => (None, None),
        Value::Number(n) => (n.as_f64().and_then(|x| number(NUMBER, x)), None),
        Value::String(s) => (Some(text(TEXT, s)), read_number(s).and_then(|x| number(NUMERIC, x))),
        Value::Bool(b) => (Some(text(BOOLEAN, if *b { "true" } else { "false" })), None),
        Value::Array(_) | Value::Object(_) => (Some(char::from(OTHER).to_string()), None),
    };
    first.into_iter().chain(second)
}

/// The key ranges a query value meets, per family: `(family, key of the value)`. A number meets
/// records' numbers and numeric strings; a string meets strings, booleans (as words) and
/// numbers (if it reads as one); a boolean meets booleans; anything else meets nothing.
pub(super) fn probes(value: &Value) -> Vec<(u8, String)> {
    match value {
        Value::Number(n) => n
            .as_f64()
            .filter(|x| !x.is_nan())
            .map(|x| {
                [NUMBER, NUMERIC].into_iter().filter_map(|f| Some((f, number(f, x)?))).collect()
            })
            .unwrap_or_default(),
        Value::String(s) => {
            let mut out = vec![(TEXT, text(TEXT, s)), (BOOLEAN, text(BOOLEAN, s))];
            if let Some(key) = read_number(s).and_then(|x| number(NUMBER, x)) {
                out.push((NUMBER, key));
            }
            out
        }
        Value::Bool(b) => vec![(BOOLEAN, text(BOOLEAN, if *b { "true" } else { "false" }))],
        Value::Null | Value::Array(_) | Value::Object(_) => Vec::new(),
    }
}

/// One row of `zuora_field_values` (tenant and object aside).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct KeyRow {
    pub field: String,
    pub key: String,
    pub record: String,
}

/// The rows of a record with these fields.
pub(super) fn rows_of(
    filterable: &[String],
    record: &str,
    fields: &Map<String, Value>,
) -> Vec<KeyRow> {
    let mut out = Vec::new();
    for field in filterable {
        if let Some(value) = fields.get(field) {
            for key in stored(value) {
                out.push(KeyRow { field: field.clone(), key, record: record.to_owned() });
            }
        }
    }
    out
}

/// The custom filterable fields of a stored definition document (its `filterable` list names the
/// system fields too; those are columns of the record).
pub(super) fn filterable_of(schema: &Value) -> Vec<String> {
    schema
        .get("filterable")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .filter(|f| !SYSTEM_FIELDS.contains(f))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Rows per statement: three binds each on SQLite (under its 32,766), arrays on PostgreSQL.
const CHUNK: usize = 5000;

/// Inserts `(field, value, record_id)` triples of `tenant`'s `object` into `table` (one of
/// `zuora_field_values`, `zuora_unique_values`, whose fourth column is `column`), set-based.
pub(super) async fn insert_triples(
    tx: &mut Tx,
    table: &str,
    column: &str,
    (tenant, object): (&str, &str),
    rows: &[(&str, &str, &str)],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(CHUNK) {
        let head = format!("INSERT INTO {table} (tenant_id, object, field, {column}, record_id) ");
        let sql = match tx.backend() {
            Backend::Postgres => {
                let column = |i: usize| -> Vec<Option<String>> {
                    chunk.iter().map(|r| Some([r.0, r.1, r.2][i].to_owned())).collect()
                };
                Sql::new(format!(
                    "{head}SELECT $1, $2, u.f, u.v, u.r FROM UNNEST($3::text[], $4::text[], \
                     $5::text[]) AS u(f, v, r)"
                ))
                .bind(tenant)
                .bind(object)
                .bind(column(0))
                .bind(column(1))
                .bind(column(2))
            }
            Backend::Sqlite => {
                let mut sql = Sql::new(format!("{head}SELECT "));
                sql.push_bind(tenant)
                    .push(", ")
                    .push_bind(object)
                    .push(", column1, column2, column3 FROM (");
                sql.push_values(chunk, |row, r| {
                    row.bind(r.0).bind(r.1).bind(r.2);
                });
                sql.push(")");
                sql
            }
        };
        tx.execute(sql).await?;
    }
    Ok(())
}

/// Inserts key rows.
pub(super) async fn insert_rows(
    tx: &mut Tx,
    place: (&str, &str),
    rows: &[KeyRow],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let triples: Vec<(&str, &str, &str)> =
        rows.iter().map(|r| (r.field.as_str(), r.key.as_str(), r.record.as_str())).collect();
    insert_triples(tx, "zuora_field_values", "key", place, &triples).await
}

/// Deletes key rows (each by its whole primary key).
pub(super) async fn delete_rows(
    tx: &mut Tx,
    place: (&str, &str),
    rows: &[KeyRow],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(CHUNK) {
        let sql = match tx.backend() {
            Backend::Postgres => {
                let column = |pick: fn(&KeyRow) -> &str| -> Vec<Option<String>> {
                    chunk.iter().map(|r| Some(pick(r).to_owned())).collect()
                };
                Sql::new(
                    "DELETE FROM zuora_field_values AS z USING UNNEST($1::text[], $2::text[], \
                     $3::text[]) AS u(f, k, r) WHERE z.tenant_id = $4 AND z.object = $5 \
                     AND z.field = u.f AND z.key = u.k AND z.record_id = u.r",
                )
                .bind(column(|r| &r.field))
                .bind(column(|r| &r.key))
                .bind(column(|r| &r.record))
                .bind(place.0)
                .bind(place.1)
            }
            Backend::Sqlite => {
                let mut sql = Sql::new("DELETE FROM zuora_field_values WHERE tenant_id = ");
                sql.push_bind(place.0)
                    .push(" AND object = ")
                    .push_bind(place.1)
                    .push(" AND (field, key, record_id) IN (");
                sql.push_values(chunk, |row, r| {
                    row.bind(r.field.as_str()).bind(r.key.as_str()).bind(r.record.as_str());
                });
                sql.push(")");
                sql
            }
        };
        tx.execute(sql).await?;
    }
    Ok(())
}

/// The rows to delete and to insert when a record's fields go from `old` to `new`.
pub(super) fn diff(mut old: Vec<KeyRow>, mut new: Vec<KeyRow>) -> (Vec<KeyRow>, Vec<KeyRow>) {
    let before = old.clone();
    old.retain(|r| !new.contains(r));
    new.retain(|r| !before.contains(r));
    (old, new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escaped_text_keeps_its_byte_order_and_has_no_nul() {
        let words = [
            "",
            "\0",
            "\0\0",
            "\u{1}",
            "\u{1}\0",
            "\u{2}",
            "a",
            "a\0",
            "a\0b",
            "a\u{1}",
            "ab",
            "é",
            "\u{10FFFF}",
        ];
        for a in words {
            assert!(!escape(a).contains('\0'));
            for b in words {
                assert_eq!(escape(a).cmp(&escape(b)), a.cmp(b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn number_keys_sort_as_the_numbers() {
        let xs = [
            f64::NEG_INFINITY,
            -1e300,
            -2.5,
            -1.0,
            -1e-300,
            -0.0,
            0.0,
            1e-300,
            1.0,
            2.0,
            2.5,
            1e300,
            f64::INFINITY,
        ];
        for a in xs {
            for b in xs {
                let (ka, kb) = (number(NUMBER, a).unwrap(), number(NUMBER, b).unwrap());
                assert_eq!(ka.cmp(&kb), a.partial_cmp(&b).unwrap(), "{a} {b}");
            }
        }
        assert_eq!(number(NUMBER, f64::NAN), None);
    }

    #[test]
    fn values_have_a_key_per_comparison_they_take_part_in() {
        let keys = |v: Value| stored(&v).collect::<Vec<_>>();
        assert_eq!(keys(json!("V1")), vec!["sV1"]);
        assert_eq!(keys(json!("12")).len(), 2, "a numeric string is text and a number");
        assert!(keys(json!("12"))[1].starts_with('m'));
        assert_eq!(keys(json!(true)), vec!["ttrue"]);
        assert_eq!(keys(json!([1])), vec!["x"]);
        assert!(keys(Value::Null).is_empty());
        assert!(keys(json!("NaN")).len() == 1, "NaN compares with nothing");
    }
}
