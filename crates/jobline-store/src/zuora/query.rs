//! `q` queries and delete-job filters as SQL (`shared/spec/vendor-apis.md` C.5, C.12), with
//! the meaning of [`Query::matches`], which stays the reference (the store tests compare the
//! two over a varied set of records on both engines).
//!
//! A query becomes a set of record ids, and the record list is `id IN (that set)`, paged by id:
//!
//! - a condition on a custom field is a key range per family of `zuora_field_values`
//!   (`keys.rs`), read from its primary key `(tenant_id, object, field, key, record_id)`, which
//!   covers it; two conditions on one field with values of one type (a `[a TO b]` range) are one
//!   range;
//! - a condition on a system field is a range of a column of `zuora_records`, each with an index
//!   `(tenant_id, object, column)`: `Id`, `CreatedById`, `UpdatedById` compare as text;
//!   `CreatedDate`, `UpdatedDate` compare as the text `timestamp` renders, which orders as the
//!   milliseconds it renders (between the years 0 and 9999), so a text bound becomes a bound on
//!   `created_at`/`updated_at` (found by a binary search over that rendering);
//! - `_exists_:f` is every key row of `f` (every record, for a system field);
//! - AND, OR, NOT are INTERSECT, UNION, EXCEPT (`a AND NOT b` is `a EXCEPT b`; a lone NOT is
//!   the object's records EXCEPT the rest).
//!
//! So a query costs what its terms match, not the object's size (a NOT alone aside). The one
//! comparison no index can answer, a delete filter's number against `CreatedById` or
//! `UpdatedById` (text columns, read as numbers by `matches`), is answered over the object's
//! distinct values of that column, read from its index and compared by `matches` itself.

use super::keys;
use super::{filterable_fields, record, RecordRow, RECORD_COLUMNS};
use crate::db::{Queries, Read, Sql};
use crate::{Backend, Store, StoreError};
use jobline_core::clock::from_millis;
use jobline_core::zuora::{timestamp, Condition, CustomObjectRecord, Op, Query};
use jobline_core::TenantId;
use serde_json::{Map, Value};
use std::collections::HashMap;
use uuid::Uuid;

/// What a record list asks for (C.12's `GET /objects/records/default/{object}`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordFilter<'a> {
    /// `q`, parsed: only the records it matches.
    pub query: Option<&'a Query>,
    /// `ids`: only these records (empty: any).
    pub ids: &'a [&'a str],
    /// `cursor`: only records whose id sorts after it (byte order).
    pub after: Option<&'a str>,
    /// `pageSize`: at most this many (none: all).
    pub limit: Option<u64>,
}

/// A system field: the column of `zuora_records` that holds it and how it compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum System {
    /// Text compared by its bytes.
    Text(&'static str),
    /// Milliseconds rendered by `timestamp`.
    Millis(&'static str),
}

fn system(field: &str) -> Option<System> {
    Some(match field {
        "Id" => System::Text("id"),
        "CreatedById" => System::Text("created_by"),
        "UpdatedById" => System::Text("updated_by"),
        "CreatedDate" => System::Millis("created_at"),
        "UpdatedDate" => System::Millis("updated_at"),
        _ => return None,
    })
}

/// A range with optional bounds, each `(value, inclusive)`.
#[derive(Debug, Clone, PartialEq)]
struct Range<T> {
    lo: Option<(T, bool)>,
    hi: Option<(T, bool)>,
}

impl<T: Ord + Clone> Range<T> {
    /// The values `op at`, within `[floor, ceiling)` (a key family's bounds).
    fn of(op: Op, at: T, floor: Option<T>, ceiling: Option<T>) -> Self {
        let floor = floor.map(|f| (f, true));
        let ceiling = ceiling.map(|c| (c, false));
        match op {
            Op::Eq => Range { lo: Some((at.clone(), true)), hi: Some((at, true)) },
            Op::Lt => Range { lo: floor, hi: Some((at, false)) },
            Op::Le => Range { lo: floor, hi: Some((at, true)) },
            Op::Gt => Range { lo: Some((at, false)), hi: ceiling },
            Op::Ge => Range { lo: Some((at, true)), hi: ceiling },
        }
    }

    /// Both ranges.
    fn and(&self, other: &Self) -> Self {
        fn pick<T: Ord + Clone>(
            a: &Option<(T, bool)>,
            b: &Option<(T, bool)>,
            tighter: std::cmp::Ordering,
        ) -> Option<(T, bool)> {
            match (a, b) {
                (None, x) | (x, None) => x.clone(),
                (Some((x, xi)), Some((y, yi))) => Some(match x.cmp(y) {
                    std::cmp::Ordering::Equal => (x.clone(), *xi && *yi),
                    o if o == tighter => (x.clone(), *xi),
                    _ => (y.clone(), *yi),
                }),
            }
        }
        Range {
            lo: pick(&self.lo, &other.lo, std::cmp::Ordering::Greater),
            hi: pick(&self.hi, &other.hi, std::cmp::Ordering::Less),
        }
    }
}

/// The first millisecond rendered by `timestamp` as `0000-…` and the last as `9999-…`: between
/// them the rendering has one width, so its text order is the order of time.
const FIRST_MS: i64 = -62_167_219_200_000;
const LAST_MS: i64 = 253_402_300_799_999;

/// The first millisecond (in `FIRST_MS..=LAST_MS + 1`) whose rendering satisfies `above`, which
/// is false and then true along time.
fn first_ms(above: impl Fn(&str) -> bool) -> i64 {
    let (mut lo, mut hi) = (FIRST_MS, LAST_MS + 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if above(&timestamp(from_millis(mid))) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// The milliseconds whose rendering compares with `s` as `op` asks.
fn millis_range(op: Op, s: &str) -> Range<i64> {
    let from = || first_ms(|t| t >= s); // the first rendering not below s
    let past = || first_ms(|t| t > s); // the first rendering above s
    match op {
        Op::Eq => Range { lo: Some((from(), true)), hi: Some((past(), false)) },
        Op::Lt => Range { lo: None, hi: Some((from(), false)) },
        Op::Le => Range { lo: None, hi: Some((past(), false)) },
        Op::Gt => Range { lo: Some((past(), true)), hi: None },
        Op::Ge => Range { lo: Some((from(), true)), hi: None },
    }
}

/// `op s` against text that holds no NUL (PostgreSQL text cannot), as an equivalent comparison
/// with no NUL, or `None` when nothing can match: with `p` the part of `s` before its first NUL,
/// such a text is below `s` exactly when it is at most `p`, and never equal.
fn without_nul(op: Op, s: &str) -> Option<(Op, &str)> {
    let Some(at) = s.find('\0') else { return Some((op, s)) };
    let p = &s[..at];
    match op {
        Op::Eq => None,
        Op::Lt | Op::Le => Some((Op::Le, p)),
        Op::Gt | Op::Ge => Some((Op::Gt, p)),
    }
}

/// One term's set of records.
#[derive(Debug, Clone)]
enum Leaf<'q> {
    Nothing,
    All,
    /// Key ranges of a custom field, per family.
    Keys {
        field: &'q str,
        ranges: Vec<(u8, Range<String>)>,
    },
    Text {
        column: &'static str,
        range: Range<String>,
    },
    Millis {
        column: &'static str,
        range: Range<i64>,
    },
    OneOf {
        column: &'static str,
        values: Vec<String>,
    },
}

impl<'q> Leaf<'q> {
    /// Both leaves as one, where they are ranges of one thing.
    fn and(&self, other: &Self) -> Option<Self> {
        Some(match (self, other) {
            (Leaf::Nothing, _) | (_, Leaf::Nothing) => Leaf::Nothing,
            (Leaf::Keys { field, ranges: a }, Leaf::Keys { field: g, ranges: b }) if field == g => {
                let ranges = a
                    .iter()
                    .filter_map(|(fa, ra)| {
                        b.iter().find(|(fb, _)| fb == fa).map(|(_, rb)| (*fa, ra.and(rb)))
                    })
                    .collect();
                Leaf::Keys { field, ranges }
            }
            (Leaf::Text { column, range: a }, Leaf::Text { column: c, range: b })
                if column == c =>
            {
                Leaf::Text { column, range: a.and(b) }
            }
            (Leaf::Millis { column, range: a }, Leaf::Millis { column: c, range: b })
                if column == c =>
            {
                Leaf::Millis { column, range: a.and(b) }
            }
            _ => return None,
        })
    }
}

fn same_type(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// Builds the SQL of a query's set of record ids (a `SELECT record_id …`).
struct Compiler<'q> {
    tenant: &'q str,
    object: &'q str,
    backend: Backend,
    /// The distinct values of `created_by` / `updated_by`, where a number is compared with them.
    distinct: HashMap<&'static str, Vec<String>>,
    aliases: usize,
}

impl<'q> Compiler<'q> {
    fn collate(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => " COLLATE \"C\"",
            Backend::Sqlite => "",
        }
    }

    fn leaf(&self, c: &'q Condition) -> Leaf<'q> {
        match (system(&c.field), &c.value) {
            (None, value) => {
                let ranges = keys::probes(value)
                    .into_iter()
                    .map(|(family, key)| {
                        let floor = char::from(family).to_string();
                        let ceiling = char::from(family + 1).to_string();
                        (family, Range::of(c.op, key, Some(floor), Some(ceiling)))
                    })
                    .collect();
                Leaf::Keys { field: &c.field, ranges }
            }
            (Some(System::Text(column)), Value::String(s)) => match without_nul(c.op, s) {
                Some((op, s)) => {
                    Leaf::Text { column, range: Range::of(op, s.to_owned(), None, None) }
                }
                None => Leaf::Nothing,
            },
            (Some(System::Text(column)), Value::Number(_)) => {
                let values = self.distinct.get(column).map_or_else(Vec::new, |values| {
                    values
                        .iter()
                        .filter(|v| {
                            let mut view = Map::new();
                            view.insert(c.field.clone(), Value::String((*v).clone()));
                            c.matches(&view)
                        })
                        .cloned()
                        .collect()
                });
                Leaf::OneOf { column, values }
            }
            (Some(System::Millis(column)), Value::String(s)) => {
                Leaf::Millis { column, range: millis_range(c.op, s) }
            }
            // A system field is text: a boolean or anything else never compares with it.
            (Some(_), _) => Leaf::Nothing,
        }
    }

    /// `… WHERE tenant_id = $ AND object = $` of the object's records.
    fn records(&self, sql: &mut Sql<'q>) {
        sql.push("SELECT id AS record_id FROM zuora_records WHERE tenant_id = ")
            .push_bind(self.tenant)
            .push(" AND object = ")
            .push_bind(self.object);
    }

    fn range<T: Into<crate::db::Arg<'q>> + PartialEq + Clone>(
        sql: &mut Sql<'q>,
        column: &str,
        range: &Range<T>,
    ) {
        if let (Some((lo, true)), Some((hi, true))) = (&range.lo, &range.hi) {
            if lo == hi {
                sql.push(" AND ").push(column).push(" = ").push_bind(lo.clone());
                return;
            }
        }
        if let Some((lo, inclusive)) = &range.lo {
            sql.push(" AND ").push(column).push(if *inclusive { " >= " } else { " > " });
            sql.push_bind(lo.clone());
        }
        if let Some((hi, inclusive)) = &range.hi {
            sql.push(" AND ").push(column).push(if *inclusive { " <= " } else { " < " });
            sql.push_bind(hi.clone());
        }
    }

    fn push_leaf(&self, sql: &mut Sql<'q>, leaf: Leaf<'q>) {
        match leaf {
            Leaf::Nothing => {
                sql.push("SELECT id AS record_id FROM zuora_records WHERE 1 = 0");
            }
            Leaf::All => self.records(sql),
            Leaf::Keys { ranges, .. } if ranges.is_empty() => self.push_leaf(sql, Leaf::Nothing),
            Leaf::Keys { field, ranges } => {
                for (i, (_, range)) in ranges.into_iter().enumerate() {
                    if i > 0 {
                        sql.push(" UNION ALL ");
                    }
                    sql.push("SELECT record_id FROM zuora_field_values WHERE tenant_id = ")
                        .push_bind(self.tenant)
                        .push(" AND object = ")
                        .push_bind(self.object)
                        .push(" AND field = ")
                        .push_bind(field);
                    Self::range(sql, "key", &range);
                }
            }
            Leaf::Text { column, range } => {
                self.records(sql);
                Self::range(sql, &format!("{column}{}", self.collate()), &range);
            }
            Leaf::Millis { column, range } => {
                self.records(sql);
                Self::range(sql, column, &range);
            }
            Leaf::OneOf { values, .. } if values.is_empty() => self.push_leaf(sql, Leaf::Nothing),
            Leaf::OneOf { column, values } => {
                self.records(sql);
                sql.push(" AND ").push(column).push(" IN (").push_list(values).push(")");
            }
        }
    }

    /// `SELECT record_id FROM (<part>) AS zqN`: a compound's operand, whatever it holds.
    fn operand(&mut self, sql: &mut Sql<'q>, part: Option<&'q Query>) {
        self.aliases += 1;
        let alias = format!(") AS zq{}", self.aliases);
        sql.push("SELECT record_id FROM (");
        match part {
            Some(q) => self.set(sql, q),
            None => self.push_leaf(sql, Leaf::All),
        }
        sql.push(&alias);
    }

    fn compound(&mut self, sql: &mut Sql<'q>, a: Option<&'q Query>, op: &str, b: &'q Query) {
        self.operand(sql, a);
        sql.push(op);
        self.operand(sql, Some(b));
    }

    /// The set of `q`.
    fn set(&mut self, sql: &mut Sql<'q>, q: &'q Query) {
        match q {
            Query::Cond(c) => {
                let leaf = self.leaf(c);
                self.push_leaf(sql, leaf);
            }
            Query::Exists(field) if system(field).is_some() => self.push_leaf(sql, Leaf::All),
            Query::Exists(field) => {
                sql.push("SELECT record_id FROM zuora_field_values WHERE tenant_id = ")
                    .push_bind(self.tenant)
                    .push(" AND object = ")
                    .push_bind(self.object)
                    .push(" AND field = ")
                    .push_bind(field.as_str());
            }
            Query::Not(inner) => match inner.as_ref() {
                Query::Not(q) => self.set(sql, q),
                q => self.compound(sql, None, " EXCEPT ", q),
            },
            Query::And(a, b) => {
                if let (Query::Cond(x), Query::Cond(y)) = (a.as_ref(), b.as_ref()) {
                    if same_type(&x.value, &y.value) {
                        if let Some(leaf) = self.leaf(x).and(&self.leaf(y)) {
                            return self.push_leaf(sql, leaf);
                        }
                    }
                }
                match (a.as_ref(), b.as_ref()) {
                    (a, Query::Not(b)) | (Query::Not(b), a) => {
                        self.compound(sql, Some(a), " EXCEPT ", b);
                    }
                    (a, b) => self.compound(sql, Some(a), " INTERSECT ", b),
                }
            }
            Query::Or(a, b) => self.compound(sql, Some(a), " UNION ", b),
        }
    }
}

/// The columns a query compares with numbers through their distinct values.
fn numeric_text_columns(q: &Query, out: &mut Vec<&'static str>) {
    match q {
        Query::Cond(c) => {
            if let (Some(System::Text(column)), Value::Number(_)) = (system(&c.field), &c.value) {
                if column != "id" && !out.contains(&column) {
                    out.push(column);
                }
            }
        }
        Query::Exists(_) => {}
        Query::Not(a) => numeric_text_columns(a, out),
        Query::And(a, b) | Query::Or(a, b) => {
            numeric_text_columns(a, out);
            numeric_text_columns(b, out);
        }
    }
}

impl Store {
    /// Builds the key rows of `object` if its definition predates them (migration 0008).
    async fn zuora_keys_ready(
        &self,
        read: &mut Read,
        tenant: &TenantId,
        object: &str,
    ) -> Result<(), StoreError> {
        let indexed: Option<(i64,)> = read
            .fetch_optional(
                Sql::new(
                    "SELECT indexed FROM zuora_definitions WHERE tenant_id = $1 AND object = $2",
                )
                .bind(tenant.as_str())
                .bind(object),
            )
            .await?;
        if indexed == Some((0,)) {
            let mut tx = self.begin().await?;
            filterable_fields(&mut tx, tenant, object).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// `SELECT <columns> FROM zuora_records WHERE` the records of `filter`, by id; `None` when
    /// no record can match.
    async fn zuora_select<'q>(
        &self,
        read: &mut Read,
        columns: &str,
        tenant: &'q TenantId,
        object: &'q str,
        filter: &RecordFilter<'q>,
    ) -> Result<Option<Sql<'q>>, StoreError> {
        let backend = read.backend();
        let mut compiler = Compiler {
            tenant: tenant.as_str(),
            object,
            backend,
            distinct: HashMap::new(),
            aliases: 0,
        };
        if let Some(q) = filter.query {
            self.zuora_keys_ready(read, tenant, object).await?;
            let mut columns = Vec::new();
            numeric_text_columns(q, &mut columns);
            for column in columns {
                let values: Vec<(String,)> = read
                    .fetch_all(
                        Sql::new(format!(
                            "SELECT DISTINCT {column} FROM zuora_records WHERE tenant_id = $1 \
                             AND object = $2"
                        ))
                        .bind(tenant.as_str())
                        .bind(object),
                    )
                    .await?;
                compiler.distinct.insert(column, values.into_iter().map(|(v,)| v).collect());
            }
        }
        let collate = compiler.collate();
        let mut sql = Sql::new(format!("SELECT {columns} FROM zuora_records WHERE tenant_id = "));
        sql.push_bind(tenant.as_str()).push(" AND object = ").push_bind(object);
        if let Some(after) = filter.after {
            // Above `after` is above its part before a NUL, for ids (see `without_nul`).
            let after = after.find('\0').map_or(after, |at| &after[..at]);
            sql.push(" AND id").push(collate).push(" > ").push_bind(after);
        }
        if !filter.ids.is_empty() {
            let ids: Vec<&str> =
                filter.ids.iter().copied().filter(|id| !id.contains('\0')).collect();
            if ids.is_empty() {
                return Ok(None);
            }
            sql.push(" AND id IN (").push_list(ids).push(")");
        }
        if let Some(q) = filter.query {
            sql.push(" AND id IN (");
            compiler.set(&mut sql, q);
            sql.push(")");
        }
        sql.push(" ORDER BY id").push(collate);
        if let Some(limit) = filter.limit {
            sql.push(" LIMIT ").push_bind(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        Ok(Some(sql))
    }

    /// The records of `object` that `filter` asks for, in the order of their ids' bytes (the
    /// order `cursor` pages by). A query runs as SQL over the object's indexes (module docs).
    pub async fn zuora_query_records(
        &self,
        tenant: &TenantId,
        object: &str,
        filter: &RecordFilter<'_>,
    ) -> Result<Vec<CustomObjectRecord>, StoreError> {
        let mut read = self.read().await?;
        let Some(sql) =
            self.zuora_select(&mut read, RECORD_COLUMNS, tenant, object, filter).await?
        else {
            return Ok(Vec::new());
        };
        let rows: Vec<RecordRow> = read.fetch_all(sql).await?;
        rows.into_iter().map(record).collect()
    }

    /// The ids of the records of `object` that `query` matches (every record without one), in
    /// the order of their bytes: what a delete job deletes.
    pub async fn zuora_matching_ids(
        &self,
        tenant: &TenantId,
        object: &str,
        query: Option<&Query>,
    ) -> Result<Vec<Uuid>, StoreError> {
        let mut read = self.read().await?;
        let filter = RecordFilter { query, ..RecordFilter::default() };
        let Some(sql) = self.zuora_select(&mut read, "id", tenant, object, &filter).await? else {
            return Ok(Vec::new());
        };
        let rows: Vec<(String,)> = read.fetch_all(sql).await?;
        rows.into_iter()
            .map(|(id,)| Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt(e.to_string())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::keys::{BOOLEAN, NUMBER, NUMERIC, TEXT};
    use super::*;

    #[test]
    fn the_rendering_has_one_width_between_the_first_and_last_millisecond() {
        assert_eq!(timestamp(from_millis(FIRST_MS)), "0000-01-01T00:00:00.000Z");
        assert_eq!(timestamp(from_millis(LAST_MS)), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn text_bounds_become_millisecond_bounds() {
        let at = |s: &str| first_ms(|t| t >= s);
        let ms = 1_609_459_200_000; // 2021-01-01T00:00:00.000Z
        assert_eq!(at("2021-01-01T00:00:00.000Z"), ms);
        assert_eq!(at("2021"), ms, "a prefix sorts before every rendering it starts");
        assert_eq!(first_ms(|t| t > "2021-01-01T00:00:00.000Z"), ms + 1);
        assert_eq!(millis_range(Op::Lt, "2021").hi, Some((ms, false)));
        assert_eq!(first_ms(|t| t >= "A"), LAST_MS + 1, "above every rendering");
    }

    #[test]
    fn ranges_intersect_with_the_tighter_bound() {
        let a = Range::of(Op::Ge, 5, None, None);
        let b = Range::of(Op::Lt, 9, None, None);
        assert_eq!(a.and(&b), Range { lo: Some((5, true)), hi: Some((9, false)) });
        let c = Range::of(Op::Gt, 5, None, None);
        assert_eq!(a.and(&c).lo, Some((5, false)));
    }

    #[test]
    fn comparisons_with_a_nul_become_comparisons_without() {
        assert_eq!(without_nul(Op::Eq, "a\0b"), None);
        assert_eq!(without_nul(Op::Lt, "a\0b"), Some((Op::Le, "a")));
        assert_eq!(without_nul(Op::Ge, "a\0b"), Some((Op::Gt, "a")));
        assert_eq!(without_nul(Op::Ge, "ab"), Some((Op::Ge, "ab")));
    }

    #[test]
    fn families_are_one_letter_each() {
        for f in [NUMBER, NUMERIC, TEXT, BOOLEAN] {
            assert!(f.is_ascii_lowercase() && (f + 1).is_ascii_lowercase());
        }
    }
}
