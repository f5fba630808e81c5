-- Zuora custom objects (shared/spec/vendor-apis.md C.11, C.12) and idempotent retries (C.2).
-- This file depends only on 0001/0002: it references no table of another migration.

-- One definition per (tenant, object); `schema` is the checked JSON document.
CREATE TABLE zuora_definitions (
    tenant_id   TEXT NOT NULL,
    object      TEXT NOT NULL,
    id          TEXT NOT NULL,
    schema      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, object)
);

-- Records keep their custom fields as JSON text; record ids are UUIDs (C.12).
CREATE TABLE zuora_records (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    object      TEXT NOT NULL,
    fields      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX zuora_records_object ON zuora_records (tenant_id, object, id);

-- Unique fields: one row per (record, unique field with a value); the unique index makes the
-- database, not a read-then-write in Rust, refuse a second record with the same value.
CREATE TABLE zuora_unique_values (
    tenant_id  TEXT NOT NULL,
    object     TEXT NOT NULL,
    field      TEXT NOT NULL,
    value      TEXT NOT NULL,
    record_id  TEXT NOT NULL REFERENCES zuora_records(id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX zuora_unique_values_key ON zuora_unique_values (tenant_id, object, field, value);
CREATE INDEX zuora_unique_values_record ON zuora_unique_values (record_id);

-- The first answer to each Idempotency-Key, replayed to retries with the same request.
CREATE TABLE zuora_idempotency (
    tenant_id    TEXT NOT NULL,
    key          TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    status       INTEGER NOT NULL,
    body         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
