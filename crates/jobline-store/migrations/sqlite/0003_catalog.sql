-- The Elastic Path PXM catalog that PXM jobs act on (shared/spec/vendor-apis.md A.8-A.13).
-- Every row carries its tenant; unique rules hold within a tenant (or within a price book).
-- Unique indexes are named `<table>_<column>`: PostgreSQL reports that name on a violation and
-- the store turns SQLite's `table.column` text into the same name, so both engines report
-- `StoreError::Duplicate { constraint: "products_sku" }` alike. JSON is stored as TEXT.

CREATE TABLE products (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL,
    name              TEXT NOT NULL,
    description       TEXT NOT NULL,
    slug              TEXT NOT NULL,
    sku               TEXT,
    status            TEXT NOT NULL,
    commodity_type    TEXT NOT NULL,
    upc_ean           TEXT,
    mpn               TEXT,
    external_ref      TEXT,
    -- The tags as a JSON array, for reading back in order; product_tags is the searchable copy.
    tags              TEXT NOT NULL,
    -- A child product's base product; deleting the base deletes its children.
    parent_id         TEXT REFERENCES products(id) ON DELETE CASCADE,
    -- For a built child: its option combination and the build's variations (sorted ids joined
    -- by commas), so a rebuild can tell "options changed" (keep ids) from "variations changed"
    -- (new ids), as vendor-apis.md A.11 requires.
    child_options     TEXT,
    child_variations  TEXT,
    -- 1 once a child was edited directly: rebuilds leave it alone.
    child_detached    INTEGER NOT NULL DEFAULT 0,
    build_rules       TEXT,
    extras            TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE UNIQUE INDEX products_slug ON products (tenant_id, slug);
CREATE UNIQUE INDEX products_sku ON products (tenant_id, sku) WHERE sku IS NOT NULL;
CREATE UNIQUE INDEX products_external_ref ON products (tenant_id, external_ref)
    WHERE external_ref IS NOT NULL;
-- Tenant-scoped keyset paging (lists and exports go in (created_at, id) order).
CREATE INDEX products_tenant_created ON products (tenant_id, created_at, id);
CREATE INDEX products_parent ON products (parent_id) WHERE parent_id IS NOT NULL;

-- One row per tag of a product, so `eq(tags,x)` and `in(tags,…)` are an indexed lookup on
-- both engines.
CREATE TABLE product_tags (
    product_id  TEXT NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    tenant_id   TEXT NOT NULL,
    tag         TEXT NOT NULL,
    PRIMARY KEY (product_id, tag)
);
CREATE INDEX product_tags_tag ON product_tags (tenant_id, tag);

-- Hierarchy slugs are not unique: a duplicated hierarchy keeps its source's slug (A.10).
CREATE TABLE hierarchies (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT,
    slug         TEXT,
    extras       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX hierarchies_tenant_created ON hierarchies (tenant_id, created_at, id);

-- Deleting a hierarchy deletes its nodes; deleting a node deletes its subtree.
CREATE TABLE nodes (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    hierarchy_id  TEXT NOT NULL REFERENCES hierarchies(id) ON DELETE CASCADE,
    parent_id     TEXT REFERENCES nodes(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    description   TEXT,
    slug          TEXT,
    sort_order    INTEGER,
    extras        TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX nodes_hierarchy ON nodes (hierarchy_id, created_at, id);
CREATE INDEX nodes_parent ON nodes (parent_id, created_at, id);

CREATE TABLE node_products (
    node_id     TEXT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    product_id  TEXT NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    tenant_id   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (node_id, product_id)
);
CREATE INDEX node_products_product ON node_products (product_id);

CREATE TABLE variations (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    sort_order  INTEGER,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX variations_tenant_created ON variations (tenant_id, created_at, id);

CREATE TABLE variation_options (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    variation_id  TEXT NOT NULL REFERENCES variations(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    description   TEXT,
    sort_order    INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX variation_options_variation ON variation_options (variation_id, created_at, id);

CREATE TABLE product_variations (
    product_id    TEXT NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    variation_id  TEXT NOT NULL REFERENCES variations(id) ON DELETE CASCADE,
    tenant_id     TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (product_id, variation_id)
);
CREATE INDEX product_variations_variation ON product_variations (variation_id);

CREATE TABLE pricebooks (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    name          TEXT NOT NULL,
    description   TEXT,
    external_ref  TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX pricebooks_name ON pricebooks (tenant_id, name);
CREATE UNIQUE INDEX pricebooks_external_ref ON pricebooks (tenant_id, external_ref)
    WHERE external_ref IS NOT NULL;
CREATE INDEX pricebooks_tenant_created ON pricebooks (tenant_id, created_at, id);

-- Deleting a price book deletes its prices.
CREATE TABLE prices (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL,
    pricebook_id        TEXT NOT NULL REFERENCES pricebooks(id) ON DELETE CASCADE,
    sku                 TEXT NOT NULL,
    external_ref        TEXT,
    currencies          TEXT NOT NULL,
    sales               TEXT,
    admin_attributes    TEXT,
    shopper_attributes  TEXT,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE UNIQUE INDEX prices_sku ON prices (pricebook_id, sku);
CREATE UNIQUE INDEX prices_external_ref ON prices (pricebook_id, external_ref)
    WHERE external_ref IS NOT NULL;
CREATE INDEX prices_pricebook_created ON prices (pricebook_id, created_at, id);
