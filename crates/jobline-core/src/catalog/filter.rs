//! EP's product filter syntax (A.9), parsed into checked clauses: product exports and lists take
//! a filter string, and the store turns the clauses into SQL. Parsing and checking happen here,
//! so the store never meets a malformed clause and a bad filter is a 400, not a query error.

use std::fmt;

use chrono::DateTime;

use super::products::{CommodityType, ProductStatus};
use crate::error::ValidationError;

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
    }
}
