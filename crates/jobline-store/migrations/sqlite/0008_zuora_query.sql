-- Zuora `q` queries and delete-job filters run as SQL (shared/spec/vendor-apis.md C.5, C.12).
--
-- One row per (record, filterable custom field with a value): `key` is the value in an encoding
-- whose byte order is the order `jobline_core::zuora::Condition::matches` compares by, with a
-- one-letter family first (n: a number, m: a string read as a number, s: a string, t: a
-- boolean, x: anything else), so a condition is one range of one index per family. Rows are
-- written in the same statements' transaction as the record they describe and removed by key
-- when it changes or goes (crates/jobline-store/src/zuora/keys.rs). WITHOUT ROWID: the primary
-- key is the only b-tree, and it covers the queries (they read record_id from it).
CREATE TABLE zuora_field_values (
    tenant_id  TEXT NOT NULL,
    object     TEXT NOT NULL,
    field      TEXT NOT NULL,
    key        TEXT NOT NULL,
    record_id  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, object, field, key, record_id)
) WITHOUT ROWID;

-- The system fields are filterable too; they are columns of the record.
CREATE INDEX zuora_records_created_at ON zuora_records (tenant_id, object, created_at);
CREATE INDEX zuora_records_updated_at ON zuora_records (tenant_id, object, updated_at);
CREATE INDEX zuora_records_created_by ON zuora_records (tenant_id, object, created_by);
CREATE INDEX zuora_records_updated_by ON zuora_records (tenant_id, object, updated_by);

-- Records of objects defined before this migration have no rows above yet: `indexed` = 0 tells
-- the store to build them (once, in one transaction) before it next reads or writes the object.
-- Definitions created from now on start with it set.
ALTER TABLE zuora_definitions ADD COLUMN indexed INTEGER NOT NULL DEFAULT 1;
UPDATE zuora_definitions SET indexed = 0;
