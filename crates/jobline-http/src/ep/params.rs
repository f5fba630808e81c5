//! Query strings of Elastic Path list endpoints: `page[limit]`, `page[offset]` and `filter`,
//! sent unencoded by `@elasticpath/js-sdk` (`shared/spec/sdk-clients.md` §1.4), and the
//! `links`/`meta` of a list document in the aligned form of DECISIONS.md ("Lists and pages").

use super::error::EpError;
use axum::http::HeaderMap;
use serde::Serialize;
use utoipa::ToSchema;

/// Page size when none is asked for.
pub const DEFAULT_LIMIT: u64 = 25;
/// The largest page; larger requests are served this many.
pub const MAX_LIMIT: u64 = 100;

/// One clause of an EP filter: `op(field,value[,value…])`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// `eq`, `in`, `like`, …
    pub op: String,
    /// The attribute.
    pub field: String,
    /// One or more values.
    pub values: Vec<String>,
}

/// A parsed list query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Page size (1..=100).
    pub limit: u64,
    /// Records to skip.
    pub offset: u64,
    /// The filter clauses, ANDed.
    pub filter: Vec<Clause>,
    /// The filter as sent, to repeat in page links.
    pub raw_filter: Option<String>,
}

impl ListQuery {
    /// Parses a raw query string (`None` when the URL has none). Unknown parameters are
    /// ignored, as Elastic Path does (the SDK may send `sort`, `include`…).
    pub fn parse(query: Option<&str>) -> Result<Self, EpError> {
        let mut q =
            ListQuery { limit: DEFAULT_LIMIT, offset: 0, filter: Vec::new(), raw_filter: None };
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "page[limit]" => {
                    let n: u64 = value.trim().parse().map_err(|_| {
                        EpError::BadRequest(format!(
                            "page[limit] must be a positive integer, got {value:?}"
                        ))
                    })?;
                    if n == 0 {
                        return Err(EpError::BadRequest("page[limit] must be at least 1".into()));
                    }
                    q.limit = n.min(MAX_LIMIT);
                }
                "page[offset]" => {
                    q.offset = value.trim().parse().map_err(|_| {
                        EpError::BadRequest(format!(
                            "page[offset] must be a non-negative integer, got {value:?}"
                        ))
                    })?;
                }
                "filter" => {
                    q.filter = parse_filter(&value)?;
                    q.raw_filter = Some(value.into_owned());
                }
                _ => {}
            }
        }
        Ok(q)
    }

    /// The values of the `eq` clause on `field`, if any; any other clause is refused as an
    /// unparseable filter, so a typo never silently lists everything.
    pub fn eq_values(&self, allowed: &[&str]) -> Result<Vec<(String, String)>, EpError> {
        self.filter
            .iter()
            .map(|c| {
                if c.op == "eq" && c.values.len() == 1 && allowed.contains(&c.field.as_str()) {
                    Ok((c.field.clone(), c.values[0].clone()))
                } else {
                    Err(EpError::BadFilter)
                }
            })
            .collect()
    }
}

/// Parses `op(field,v1,v2):op(field,v)`; values may be double-quoted to hold `,` `:` `)`.
pub fn parse_filter(s: &str) -> Result<Vec<Clause>, EpError> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(EpError::BadFilter);
    }
    while !rest.is_empty() {
        let open = rest.find('(').ok_or(EpError::BadFilter)?;
        let op = rest[..open].trim().to_ascii_lowercase();
        if op.is_empty() || !op.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(EpError::BadFilter);
        }
        let mut args = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        let mut end = None;
        let body = &rest[open + 1..];
        for (i, ch) in body.char_indices() {
            match ch {
                '"' => quoted = !quoted,
                ',' if !quoted => args.push(std::mem::take(&mut cur)),
                ')' if !quoted => {
                    args.push(std::mem::take(&mut cur));
                    end = Some(open + 1 + i);
                    break;
                }
                '(' if !quoted => return Err(EpError::BadFilter),
                c => cur.push(c),
            }
        }
        let end = end.ok_or(EpError::BadFilter)?;
        let mut args = args.into_iter().map(|a| a.trim().to_owned());
        let field = args.next().filter(|f| !f.is_empty()).ok_or(EpError::BadFilter)?;
        let values: Vec<String> = args.collect();
        if values.is_empty() {
            return Err(EpError::BadFilter);
        }
        out.push(Clause { op, field, values });
        rest = rest[end + 1..].trim_start();
        if let Some(r) = rest.strip_prefix(':') {
            rest = r.trim_start();
            if rest.is_empty() {
                return Err(EpError::BadFilter);
            }
        } else if !rest.is_empty() {
            return Err(EpError::BadFilter);
        }
    }
    Ok(out)
}

/// `links` of a list document: `current` and `first` always, `last` except on the final
/// page, `next`/`prev` where they exist (null otherwise).
#[derive(Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct Links {
    /// This page.
    pub current: String,
    /// The first page.
    pub first: String,
    /// The last page (null on the last page).
    pub last: Option<String>,
    /// The next page.
    pub next: Option<String>,
    /// The previous page.
    pub prev: Option<String>,
}

/// `meta` of a list document.
#[derive(Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct ListMeta {
    /// Paging figures.
    pub page: PageMeta,
    /// Result figures.
    pub results: ResultsMeta,
}

/// `meta.page`.
#[derive(Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct PageMeta {
    /// Page size.
    pub limit: u64,
    /// Records skipped.
    pub offset: u64,
    /// This page's number, from 1.
    pub current: u64,
    /// Number of pages.
    pub total: u64,
}

/// `meta.results`.
#[derive(Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct ResultsMeta {
    /// Records matching in all.
    pub total: u64,
}

/// Builds `links` and `meta` for a page of `q` over `total` records at `path` of the request's
/// host. Links are absolute, as Elastic Path's are.
pub fn links_and_meta(
    headers: &HeaderMap,
    path: &str,
    q: &ListQuery,
    total: u64,
) -> (Links, ListMeta) {
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    let limit = q.limit;
    let pages = total.div_ceil(limit).max(1);
    let last_offset = (pages - 1) * limit;
    let url = |offset: u64| {
        let mut u = format!("{proto}://{host}{path}?page[limit]={limit}&page[offset]={offset}");
        if let Some(f) = &q.raw_filter {
            u.push_str("&filter=");
            u.push_str(f);
        }
        u
    };
    let on_last = q.offset >= last_offset;
    let links = Links {
        current: url(q.offset),
        first: url(0),
        last: (!on_last).then(|| url(last_offset)),
        next: (q.offset + limit < total).then(|| url(q.offset + limit)),
        prev: (q.offset > 0).then(|| url(q.offset.saturating_sub(limit))),
    };
    let meta = ListMeta {
        page: PageMeta { limit, offset: q.offset, current: q.offset / limit + 1, total: pages },
        results: ResultsMeta { total },
    };
    (links, meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clause(op: &str, field: &str, values: &[&str]) -> Clause {
        Clause {
            op: op.into(),
            field: field.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn raw_sdk_query_strings_parse() {
        let q = ListQuery::parse(Some("page[limit]=10&page[offset]=20&filter=eq(status,pending)"))
            .unwrap();
        assert_eq!((q.limit, q.offset), (10, 20));
        assert_eq!(q.filter, vec![clause("eq", "status", &["pending"])]);
        let q = ListQuery::parse(Some("page%5Blimit%5D=500")).unwrap();
        assert_eq!(q.limit, MAX_LIMIT, "encoded brackets work too; the limit is capped");
        assert_eq!(ListQuery::parse(None).unwrap().limit, DEFAULT_LIMIT);
        for bad in ["page[limit]=x", "page[limit]=0", "page[offset]=-1", "filter=eq(status"] {
            assert!(ListQuery::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters_parse_or_are_refused() {
        let ok = [
            ("eq(type,product-export)", vec![clause("eq", "type", &["product-export"])]),
            (
                "eq(status,live):in(sku,a,b)",
                vec![clause("eq", "status", &["live"]), clause("in", "sku", &["a", "b"])],
            ),
            ("eq(name,\"a, b: (c)\")", vec![clause("eq", "name", &["a, b: (c)"])]),
        ];
        for (s, want) in ok {
            assert_eq!(parse_filter(s).unwrap(), want, "{s}");
        }
        for bad in [
            "",
            "eq",
            "eq(status)",
            "eq(,x)",
            "eq(a,b)x",
            "eq(a,b):",
            "(a|b)",
            "e q(a,b)",
            "eq(a,(b))",
        ] {
            assert!(parse_filter(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn links_follow_the_aligned_rules() {
        let mut h = HeaderMap::new();
        h.insert("host", "api.test".parse().unwrap());
        let q = ListQuery { limit: 10, offset: 0, filter: vec![], raw_filter: None };
        let (l, m) = links_and_meta(&h, "/pcm/jobs", &q, 25);
        assert_eq!(l.current, "http://api.test/pcm/jobs?page[limit]=10&page[offset]=0");
        assert_eq!(
            l.last.as_deref(),
            Some("http://api.test/pcm/jobs?page[limit]=10&page[offset]=20")
        );
        assert!(l.prev.is_none() && l.next.is_some());
        assert_eq!((m.page.current, m.page.total, m.results.total), (1, 3, 25));
        let q = ListQuery { offset: 20, ..q };
        let (l, _) = links_and_meta(&h, "/pcm/jobs", &q, 25);
        assert!(l.last.is_none() && l.next.is_none() && l.prev.is_some());
        let (l, m) = links_and_meta(&h, "/pcm/jobs", &ListQuery { offset: 0, ..q }, 0);
        assert!(l.last.is_none() && l.next.is_none());
        assert_eq!(m.page.total, 1);
    }
}
