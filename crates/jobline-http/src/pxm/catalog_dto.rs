//! Wire shapes of the PXM catalog (`shared/spec/vendor-apis.md` A.13): JSON:API resources with
//! `type`, `id`, `attributes` and `meta`, as Elastic Path answers. Rendered from the domain
//! types here; the domain types are never serialized.

use crate::ep::timestamp;
use jobline_core::{Hierarchy, Node, Price, PriceBook, Product, Variation, VariationOption};
use serde_json::{json, Map, Value};

fn meta(created: chrono::DateTime<chrono::Utc>, updated: chrono::DateTime<chrono::Utc>) -> Value {
    json!({ "created_at": timestamp(created), "updated_at": timestamp(updated), "owner": "store" })
}

/// Adds `extras` (template columns, attribute maps, locales…) to `attributes`, never over a
/// first-class attribute.
fn with_extras(mut attributes: Map<String, Value>, extras: &Value) -> Value {
    if let Value::Object(extras) = extras {
        for (k, v) in extras {
            attributes.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    Value::Object(attributes)
}

/// A `product`.
pub fn product(p: &Product) -> Value {
    let mut a = Map::new();
    a.insert("name".into(), p.name.clone().into());
    a.insert("description".into(), p.description.clone().into());
    a.insert("slug".into(), p.slug.clone().into());
    a.insert("sku".into(), p.sku.clone().into());
    a.insert("status".into(), p.status.as_str().into());
    a.insert("commodity_type".into(), p.commodity_type.as_str().into());
    a.insert("upc_ean".into(), p.upc_ean.clone().into());
    a.insert("mpn".into(), p.mpn.clone().into());
    a.insert("external_ref".into(), p.external_ref.clone().into());
    a.insert("tags".into(), p.tags.clone().into());
    if let Some(rules) = &p.build_rules {
        a.insert("build_rules".into(), rules.clone());
    }
    let mut m = meta(p.created_at, p.updated_at);
    let kind = if p.parent_id.is_some() { "child" } else { "standard" };
    m["product_types"] = json!([kind]);
    let mut doc = json!({ "type": "product", "id": p.id.to_string(), "attributes": with_extras(a, &p.extras), "meta": m });
    if let Some(parent) = p.parent_id {
        doc["attributes"]["base_product_id"] = parent.to_string().into();
        doc["relationships"] =
            json!({ "base_product": { "data": { "type": "product", "id": parent.to_string() } } });
    }
    doc
}

/// A `hierarchy`.
pub fn hierarchy(h: &Hierarchy) -> Value {
    let mut a = Map::new();
    a.insert("name".into(), h.name.clone().into());
    a.insert("description".into(), h.description.clone().into());
    a.insert("slug".into(), h.slug.clone().into());
    json!({ "type": "hierarchy", "id": h.id.to_string(), "attributes": with_extras(a, &h.extras), "meta": meta(h.created_at, h.updated_at) })
}

/// A `node`.
pub fn node(n: &Node) -> Value {
    let mut a = Map::new();
    a.insert("name".into(), n.name.clone().into());
    a.insert("description".into(), n.description.clone().into());
    a.insert("slug".into(), n.slug.clone().into());
    let mut m = meta(n.created_at, n.updated_at);
    m["hierarchy_id"] = n.hierarchy_id.to_string().into();
    m["sort_order"] = n.sort_order.into();
    let mut doc = json!({ "type": "node", "id": n.id.to_string(), "attributes": with_extras(a, &n.extras), "meta": m });
    if let Some(parent) = n.parent_id {
        doc["relationships"] =
            json!({ "parent": { "data": { "type": "node", "id": parent.to_string() } } });
    }
    doc
}

/// A `product-variation-option`.
pub fn option(o: &VariationOption) -> Value {
    json!({
        "type": "product-variation-option",
        "id": o.id.to_string(),
        "attributes": { "name": o.name, "description": o.description, "sort_order": o.sort_order },
        "meta": meta(o.created_at, o.updated_at),
    })
}

/// A `product-variation`, with its options in `meta.options`.
pub fn variation(v: &Variation) -> Value {
    let mut m = meta(v.created_at, v.updated_at);
    m["options"] = v.options.iter().map(option).collect::<Vec<_>>().into();
    json!({
        "type": "product-variation",
        "id": v.id.to_string(),
        "attributes": { "name": v.name, "sort_order": v.sort_order },
        "meta": m,
    })
}

/// A `pricebook`.
pub fn pricebook(b: &PriceBook) -> Value {
    json!({
        "type": "pricebook",
        "id": b.id.to_string(),
        "attributes": {
            "name": b.name,
            "description": b.description,
            "external_ref": b.external_ref,
            "created_at": timestamp(b.created_at),
            "updated_at": timestamp(b.updated_at),
        },
        "meta": { "owner": "store" },
    })
}

/// A `product-price`.
pub fn price(p: &Price) -> Value {
    json!({
        "type": "product-price",
        "id": p.id.to_string(),
        "attributes": {
            "sku": p.sku,
            "external_ref": p.external_ref,
            "currencies": p.currencies,
            "sales": p.sales,
            "admin_attributes": p.admin_attributes,
            "shopper_attributes": p.shopper_attributes,
            "created_at": timestamp(p.created_at),
            "updated_at": timestamp(p.updated_at),
        },
        "meta": { "owner": "store", "pricebook_id": p.pricebook_id.to_string() },
    })
}
