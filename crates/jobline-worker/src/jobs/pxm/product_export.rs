//! `pxm/product-export` (vendor-apis.md A.9): writes the products a filter selects as CSV files
//! of at most [`PRODUCTS_PER_FILE`] products each, in the import layout, so a file re-imports
//! cleanly (updating the same products by `id`).
//!
//! Products are read in keyset pages (creation order) and each file is stored whole with one
//! fenced write, named `products-0001.csv`, `products-0002.csv`, …. The result lists the names
//! under `files`; the HTTP edge turns them into signed `meta.file_locations` links when the job
//! is read, so links never expire inside the stored result. No products gives `"files": []`.
//!
//! Decisions where the vendor is silent: template columns are always named by flow id
//! (jobline keeps no flow slugs, so `use_template_slugs` changes nothing); an attribute column
//! is written as `__REMOVE_ATTRIBUTE__` for a product that lacks the key (another product of
//! the file has it), because an empty cell would re-import as the empty string (A.8) while the
//! sentinel re-imports as "absent", on update and on create alike.

use super::csv_layout::{
    classify, join_tags, Column, CREATED_AT, FAMILIES, FIXED, MAIN_IMAGE, UPDATED_AT,
};
use super::{fail, payload};
use crate::{JobContext, JobError, JobHandler};
use async_trait::async_trait;
use chrono::SecondsFormat;
use jobline_core::catalog::{Product, ProductFilter, REMOVE_ATTRIBUTE};
use jobline_core::{kinds, parse_ep_filter, KindSpec};
use jobline_store::JobFile;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Most products in one file (A.9; DECISIONS.md picks 10,000 over the conflicting 50,000).
pub const PRODUCTS_PER_FILE: usize = 10_000;

/// Products per store read.
const PAGE: usize = 1_000;

/// Columns exported even when `columns.include` leaves them out (A.9).
const ALWAYS: [&str; 5] = ["id", "name", "sku", "external_ref", "commodity_type"];

/// Handler of [`kinds::pxm::PRODUCT_EXPORT`].
#[derive(Debug, Clone, Copy)]
pub struct ProductExport;

#[derive(Debug, Deserialize)]
struct Params {
    #[serde(default)]
    filter: Option<String>,
    #[serde(default)]
    columns: Value,
}

#[async_trait]
impl JobHandler for ProductExport {
    fn spec(&self) -> KindSpec {
        kinds::pxm::PRODUCT_EXPORT
    }

    async fn run(&self, ctx: JobContext) -> Result<Option<Value>, JobError> {
        let p: Params = payload(&ctx)?;
        let filter = match p.filter.as_deref().map(parse_ep_filter) {
            None => ProductFilter::all(),
            Some(Ok(f)) => f,
            Some(Err(e)) => {
                let message = format!("could not parse the supplied filter: {}", e.message);
                return Err(fail(&ctx, None, message).await);
            }
        };
        let include = match Include::parse(&p.columns) {
            Ok(i) => i,
            Err(message) => return Err(fail(&ctx, None, message).await),
        };
        let tenant = &ctx.job().tenant;
        let mut files: Vec<String> = Vec::new();
        let mut batch: Vec<Product> = Vec::with_capacity(PRODUCTS_PER_FILE);
        let mut after = None;
        let mut written = 0u64;
        loop {
            ctx.checkpoint()?;
            let want = PAGE.min(PRODUCTS_PER_FILE - batch.len());
            let page =
                ctx.store().list_products_for_export(tenant, &filter, after, want as u64).await?;
            let last = page.len() < want;
            after = page.last().map(|p| p.id).or(after);
            batch.extend(page);
            if batch.len() == PRODUCTS_PER_FILE || (last && !batch.is_empty()) {
                let name = format!("products-{:04}.csv", files.len() + 1);
                let bytes = render(&batch, &include)
                    .map_err(|e| JobError::Fatal(format!("cannot write {name}: {e}")))?;
                ctx.put_file(&JobFile {
                    name: name.clone(),
                    content_type: "text/csv".into(),
                    bytes,
                })
                .await?;
                files.push(name);
                written += batch.len() as u64;
                batch.clear();
                ctx.progress(written, None).await?;
            }
            if last {
                break;
            }
        }
        ctx.progress(written, Some(written)).await?;
        Ok(Some(serde_json::json!({ "files": files, "meta": { "file_locations": null } })))
    }
}

/// Which columns a `columns.include` body asks for (A.9). `None`: every column.
#[derive(Debug, Default)]
struct Include(Option<BTreeSet<String>>);

impl Include {
    /// Reads `{"include": [names…]}` (or nothing). Names are recognised like import headers;
    /// `shopper_attributes.*`/`admin_attributes.*` ask for a whole family, which cannot be
    /// mixed with single keys of the same family (A.9).
    fn parse(columns: &Value) -> Result<Self, String> {
        let Some(list) = columns.get("include").filter(|v| !v.is_null()) else {
            return Ok(Include(None));
        };
        let Some(list) = list.as_array() else {
            return Err("columns.include must be a list of column names".into());
        };
        let mut set = BTreeSet::new();
        for name in list {
            let Some(name) = name.as_str() else {
                return Err("columns.include must be a list of column names".into());
            };
            set.insert(match classify(name) {
                Column::Fixed(f) => f.to_owned(),
                Column::Template(key) => key,
                Column::Attribute { family, key } => format!("{family}.{key}"),
                Column::Ignored => name.trim().to_owned(),
            });
        }
        for family in FAMILIES {
            let wildcard = format!("{family}.*");
            let single = set.iter().any(|n| n.starts_with(&format!("{family}.")) && *n != wildcard);
            if set.contains(&wildcard) && single {
                return Err(format!(
                    "columns.include cannot mix {wildcard} with single {family} keys"
                ));
            }
        }
        Ok(Include(Some(set)))
    }

    fn fixed(&self, name: &str) -> bool {
        self.0.as_ref().is_none_or(|s| ALWAYS.contains(&name) || s.contains(name))
    }

    fn template(&self, key: &str) -> bool {
        self.0.as_ref().is_none_or(|s| s.contains(key))
    }

    fn attribute(&self, family: &str, key: &str) -> bool {
        self.0.as_ref().is_none_or(|s| {
            s.contains(&format!("{family}.*")) || s.contains(&format!("{family}.{key}"))
        })
    }
}

/// A JSON value as cell text: strings as they are, nothing as empty, anything else as JSON.
fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The CSV text of one file: the fixed columns, then the template and attribute columns any
/// product of the file has (sorted), then the informational timestamps.
fn render(products: &[Product], include: &Include) -> Result<Vec<u8>, csv::Error> {
    let fixed: Vec<&str> = FIXED.iter().copied().filter(|f| include.fixed(f)).collect();
    let mut templates = BTreeSet::new();
    let mut attributes: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for p in products {
        let Some(extras) = p.extras.as_object() else { continue };
        for (key, value) in extras {
            if key.starts_with("template:") && include.template(key) {
                templates.insert(key.clone());
            }
            if let (Some(family), Some(attrs)) =
                (FAMILIES.iter().find(|f| **f == key), value.as_object())
            {
                let keys = attributes.entry(family).or_default();
                keys.extend(attrs.keys().filter(|k| include.attribute(family, k)).cloned());
            }
        }
    }
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = fixed.iter().map(|f| (*f).to_owned()).collect();
    header.extend(templates.iter().cloned());
    for family in FAMILIES {
        header
            .extend(attributes.get(family).into_iter().flatten().map(|k| format!("{family}.{k}")));
    }
    header.extend([CREATED_AT.to_owned(), UPDATED_AT.to_owned()]);
    out.write_record(&header)?;
    for p in products {
        let mut row: Vec<String> = fixed.iter().map(|f| fixed_cell(p, f)).collect();
        row.extend(templates.iter().map(|k| cell(p.extras.get(k))));
        for family in FAMILIES {
            for key in attributes.get(family).into_iter().flatten() {
                row.push(match p.extras.get(family).and_then(|a| a.get(key)) {
                    Some(v) => cell(Some(v)),
                    None => REMOVE_ATTRIBUTE.to_owned(),
                });
            }
        }
        row.push(p.created_at.to_rfc3339_opts(SecondsFormat::Millis, true));
        row.push(p.updated_at.to_rfc3339_opts(SecondsFormat::Millis, true));
        out.write_record(&row)?;
    }
    out.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

fn fixed_cell(p: &Product, column: &str) -> String {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    match column {
        "id" => p.id.to_string(),
        "external_ref" => opt(&p.external_ref),
        "name" => p.name.clone(),
        "description" => p.description.clone(),
        "slug" => p.slug.clone(),
        "status" => p.status.as_str().to_owned(),
        "commodity_type" => p.commodity_type.as_str().to_owned(),
        "upc_ean" => opt(&p.upc_ean),
        "mpn" => opt(&p.mpn),
        "sku" => opt(&p.sku),
        "tags" => join_tags(&p.tags),
        MAIN_IMAGE => cell(p.extras.get(MAIN_IMAGE)),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn include_keeps_the_always_columns_and_refuses_mixed_families() {
        let all = Include::parse(&Value::Null).unwrap();
        assert!(all.fixed("tags") && all.attribute("admin_attributes", "x"));
        let some =
            Include::parse(&json!({"include": ["Description", "admin_attributes.*"]})).unwrap();
        assert!(some.fixed("description") && some.fixed("sku") && !some.fixed("tags"));
        assert!(
            some.attribute("admin_attributes", "x") && !some.attribute("shopper_attributes", "x")
        );
        assert!(!some.template("template:f:x"));
        let err = Include::parse(&json!({"include": ["admin_attributes.*", "admin_attributes.k"]}))
            .unwrap_err();
        assert!(err.contains("cannot mix"), "{err}");
    }
}
