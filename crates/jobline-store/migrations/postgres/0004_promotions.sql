-- Elastic Path Promotions (shared/spec/vendor-apis.md Part B): promotions, their codes, and the
-- settings every node shares (the URL-signing key of file downloads). Times are Unix ms.

-- A promotion keeps the fields jobline acts on as columns (`max_codes` is jobline's extension,
-- DECISIONS.md "Effects of jobs"); every other attribute the client sent is kept whole as JSON.
CREATE TABLE promotions (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT,
    max_codes    BIGINT NOT NULL DEFAULT 1000,
    attributes   TEXT NOT NULL DEFAULT '{}',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX promotions_tenant_created ON promotions (tenant_id, created_at, id);

-- Codes are unique per promotion (the primary key). `created_by_job` names the code_generate
-- job that made a code, so cancelling that job deletes exactly its codes and no others.
CREATE TABLE promotion_codes (
    promotion_id    TEXT NOT NULL REFERENCES promotions(id) ON DELETE CASCADE,
    code            TEXT NOT NULL,
    uses            BIGINT NOT NULL DEFAULT 0,
    max_uses        BIGINT,
    consume_unit    TEXT,
    created_by_job  TEXT,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (promotion_id, code)
);
CREATE INDEX promotion_codes_order ON promotion_codes (promotion_id, created_at, code);
CREATE INDEX promotion_codes_job ON promotion_codes (created_by_job) WHERE created_by_job IS NOT NULL;

-- Values every node must agree on, created on first use.
CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
