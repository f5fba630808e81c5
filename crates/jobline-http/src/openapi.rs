//! The OpenAPI 3.1 description of the whole HTTP API, served at `GET /openapi.json`.
//!
//! The document is generated from the code: each handler carries `#[utoipa::path]` and each DTO
//! `ToSchema`, next to what they describe, and [`ApiDoc`] lists the handlers. Three things the
//! attributes cannot say are added here by [`utoipa::Modify`] steps:
//! - the catalog routes of PXM, whose handlers are written once, generically, over every kind
//!   of record (`pxm::catalog`): their operations come from [`CATALOG`], one row each;
//! - the second mount of the Promotions handlers at `/v2/rule-promotions` (the same handlers
//!   serve both families, `promotions::routes`);
//! - the bearer security scheme, and one unique `operationId` per operation.
//!
//! That the document and the router agree, both ways, is checked by
//! `crates/jobline/tests/api/openapi.rs` (every documented operation is routed; every other
//! method on a documented path is the router's 405) against [`listed_routes`].
//!
//! What this module must never do: decide a status code or touch the store. It only describes.

use crate::state::AppState;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::LazyLock;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, ObjectBuilder, Ref, Required, ResponseBuilder, Type};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

/// The route serving the document; it needs no token.
pub fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json))
}

/// The document, built once.
static DOCUMENT: LazyLock<serde_json::Value> = LazyLock::new(|| {
    // Serialising a document of plain maps and strings cannot fail.
    serde_json::to_value(document()).expect("the OpenAPI document serialises")
});

/// `GET /openapi.json`: this API's OpenAPI 3.1 description.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", responses((status = 200, description = "the OpenAPI 3.1 document", body = AnyObject)))]
async fn openapi_json() -> Json<serde_json::Value> {
    Json(DOCUMENT.clone())
}

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Every (method, path) the router serves, in one place: the router-versus-document test
/// compares the document with this list both ways and walks it through the real app. The `/v1`
/// routes come from the operator API's own list, so they are not written down twice.
pub fn listed_routes() -> Vec<(&'static str, &'static str)> {
    DIALECT_ROUTES.iter().copied().chain(crate::native::ROUTES).collect()
}

/// The routes of the probes, the document itself and the three vendor dialects.
const DIALECT_ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"),
    ("POST", "/oauth/access_token"),
    ("GET", "/v2/files/{job}/{name}"),
    // PXM jobs.
    ("GET", "/pcm/jobs"),
    ("GET", "/pcm/jobs/{id}"),
    ("GET", "/pcm/jobs/{id}/errors"),
    ("POST", "/pcm/jobs/{id}/cancel"),
    ("POST", "/pcm/products/import"),
    ("POST", "/pcm/pricebooks/import"),
    ("POST", "/pcm/products/export"),
    // PXM catalog.
    ("GET", "/pcm/products"),
    ("POST", "/pcm/products"),
    ("GET", "/pcm/products/{id}"),
    ("PUT", "/pcm/products/{id}"),
    ("DELETE", "/pcm/products/{id}"),
    ("POST", "/pcm/products/{id}/build"),
    ("GET", "/pcm/products/{id}/variations"),
    ("GET", "/pcm/products/{id}/nodes"),
    ("POST", "/pcm/products/{id}/relationships/variations"),
    ("DELETE", "/pcm/products/{id}/relationships/variations"),
    ("GET", "/pcm/hierarchies"),
    ("POST", "/pcm/hierarchies"),
    ("GET", "/pcm/hierarchies/{id}"),
    ("PUT", "/pcm/hierarchies/{id}"),
    ("DELETE", "/pcm/hierarchies/{id}"),
    ("POST", "/pcm/hierarchies/{id}/duplicate_job"),
    ("GET", "/pcm/hierarchies/{id}/children"),
    ("GET", "/pcm/hierarchies/{id}/nodes"),
    ("POST", "/pcm/hierarchies/{id}/nodes"),
    ("GET", "/pcm/hierarchies/{id}/nodes/{node}"),
    ("PUT", "/pcm/hierarchies/{id}/nodes/{node}"),
    ("DELETE", "/pcm/hierarchies/{id}/nodes/{node}"),
    ("GET", "/pcm/hierarchies/{id}/nodes/{node}/children"),
    ("GET", "/pcm/hierarchies/{id}/nodes/{node}/products"),
    ("POST", "/pcm/hierarchies/{id}/nodes/{node}/relationships/products"),
    ("DELETE", "/pcm/hierarchies/{id}/nodes/{node}/relationships/products"),
    ("GET", "/pcm/variations"),
    ("POST", "/pcm/variations"),
    ("GET", "/pcm/variations/{id}"),
    ("PUT", "/pcm/variations/{id}"),
    ("DELETE", "/pcm/variations/{id}"),
    ("GET", "/pcm/variations/{id}/options"),
    ("POST", "/pcm/variations/{id}/options"),
    ("GET", "/pcm/variations/{id}/options/{option}"),
    ("PUT", "/pcm/variations/{id}/options/{option}"),
    ("DELETE", "/pcm/variations/{id}/options/{option}"),
    ("GET", "/pcm/pricebooks"),
    ("POST", "/pcm/pricebooks"),
    ("GET", "/pcm/pricebooks/{id}"),
    ("PUT", "/pcm/pricebooks/{id}"),
    ("DELETE", "/pcm/pricebooks/{id}"),
    ("GET", "/pcm/pricebooks/{id}/prices"),
    ("POST", "/pcm/pricebooks/{id}/prices"),
    ("GET", "/pcm/pricebooks/{id}/prices/{price}"),
    ("PUT", "/pcm/pricebooks/{id}/prices/{price}"),
    ("DELETE", "/pcm/pricebooks/{id}/prices/{price}"),
    // Promotions, under both families' prefixes.
    ("GET", "/v2/promotions"),
    ("POST", "/v2/promotions"),
    ("GET", "/v2/promotions/{id}"),
    ("PUT", "/v2/promotions/{id}"),
    ("DELETE", "/v2/promotions/{id}"),
    ("GET", "/v2/promotions/{id}/codes"),
    ("POST", "/v2/promotions/{id}/codes"),
    ("DELETE", "/v2/promotions/{id}/codes"),
    ("DELETE", "/v2/promotions/{id}/codes/{code}"),
    ("GET", "/v2/promotions/{id}/jobs"),
    ("POST", "/v2/promotions/{id}/jobs"),
    ("POST", "/v2/promotions/{id}/jobs/{job}/cancel"),
    ("GET", "/v2/promotions/{id}/jobs/{job}/file"),
    ("GET", "/v2/rule-promotions"),
    ("POST", "/v2/rule-promotions"),
    ("GET", "/v2/rule-promotions/{id}"),
    ("PUT", "/v2/rule-promotions/{id}"),
    ("DELETE", "/v2/rule-promotions/{id}"),
    ("GET", "/v2/rule-promotions/{id}/codes"),
    ("POST", "/v2/rule-promotions/{id}/codes"),
    ("DELETE", "/v2/rule-promotions/{id}/codes"),
    ("DELETE", "/v2/rule-promotions/{id}/codes/{code}"),
    ("GET", "/v2/rule-promotions/{id}/jobs"),
    ("POST", "/v2/rule-promotions/{id}/jobs"),
    ("POST", "/v2/rule-promotions/{id}/jobs/{job}/cancel"),
    ("GET", "/v2/rule-promotions/{id}/jobs/{job}/file"),
    // Zuora.
    ("POST", "/oauth/token"),
    ("GET", "/objects/definitions/default"),
    ("POST", "/objects/definitions/default"),
    ("GET", "/objects/definitions/default/{object}"),
    ("DELETE", "/objects/definitions/default/{object}"),
    ("GET", "/objects/records/default/{object}"),
    ("POST", "/objects/records/default/{object}"),
    ("GET", "/objects/records/default/{object}/{id}"),
    ("PUT", "/objects/records/default/{object}/{id}"),
    ("PATCH", "/objects/records/default/{object}/{id}"),
    ("DELETE", "/objects/records/default/{object}/{id}"),
    ("GET", "/objects/jobs"),
    ("POST", "/objects/jobs"),
    ("GET", "/objects/jobs/{id}"),
    ("POST", "/objects/jobs/{id}/files"),
    ("GET", "/objects/jobs/{id}/errors"),
    ("PATCH", "/objects/jobs/{id}/cancel"),
];

/// The handlers the document describes, and what `Modify` steps add.
///
/// Adding routes (the native `/v1` API included): put `#[utoipa::path]` on each handler (with
/// `tag = "v1"`, `security(("bearer" = []))` and its error shape under `"4XX"`), `ToSchema` on
/// its DTOs, name the handlers in `paths(...)` below and the tag in `tags(...)`, and add each
/// (method, path) to [`DIALECT_ROUTES`] (a `/v1` route to `native::ROUTES`); the tests here and in `tests/api/openapi.rs` then hold the
/// router, the list and the document to each other, and `e2e/openapi/run.sh` fuzzes the new
/// operations with the rest.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "jobline",
        description = "Asynchronous jobs behind the job APIs of Elastic Path PXM, Elastic Path \
                       Promotions and Zuora custom objects, and jobline's own operator API \
                       (`/v1`). Each dialect answers errors in its vendor's own shape."
    ),
    paths(
        openapi_json,
        crate::health::healthz,
        crate::health::readyz,
        crate::ep::oauth::access_token,
        crate::files::download,
        crate::pxm::jobs::list,
        crate::pxm::jobs::get_one,
        crate::pxm::jobs::errors,
        crate::pxm::jobs::cancel,
        crate::pxm::create::import_products,
        crate::pxm::create::import_prices,
        crate::pxm::create::export_products,
        crate::pxm::catalog::hierarchies::create_node,
        crate::pxm::catalog::hierarchies::children,
        crate::pxm::catalog::hierarchies::node_products,
        crate::pxm::catalog::hierarchies::duplicate_hierarchy,
        crate::pxm::catalog::products::build_children,
        crate::promotions::resources::create,
        crate::promotions::resources::list,
        crate::promotions::resources::get_one,
        crate::promotions::resources::update,
        crate::promotions::resources::remove,
        crate::promotions::codes::list,
        crate::promotions::codes::add,
        crate::promotions::codes::remove,
        crate::promotions::codes::remove_one,
        crate::promotions::jobs::create,
        crate::promotions::jobs::list,
        crate::promotions::jobs::cancel,
        crate::promotions::jobs::file,
        crate::zuora::oauth::token,
        crate::zuora::definitions::list,
        crate::zuora::definitions::create,
        crate::zuora::definitions::get_one,
        crate::zuora::definitions::delete,
        crate::zuora::records::create,
        crate::zuora::records::list,
        crate::zuora::records::get_one,
        crate::zuora::records::replace,
        crate::zuora::records::update,
        crate::zuora::records::delete,
        crate::zuora::jobs::create,
        crate::zuora::jobs::list,
        crate::zuora::jobs::get_one,
        crate::zuora::jobs::errors,
        crate::zuora::jobs::cancel,
        crate::zuora::jobs::upload,
        crate::native::jobs::list,
        crate::native::jobs::get_one,
        crate::native::jobs::errors,
        crate::native::jobs::file,
        crate::native::jobs::cancel,
        crate::native::jobs::queues,
        crate::native::stream::events,
    ),
    components(schemas(
        AnyObject,
        EpOne,
        EpPageDocument,
        EpListDocument,
        crate::pxm::resource::Document,
        crate::pxm::resource::Identifiers,
        // The data of each `GET /v1/events` event: the stream itself is documented as text.
        crate::native::dto::StreamEvent,
    )),
    modifiers(&Catalog, &RuleFamily, &Bearer, &UniqueOperationIds),
    tags(
        (name = "pxm", description = "Elastic Path PXM: catalog and jobs (`/pcm`)"),
        (name = "promotions", description = "Elastic Path Promotions: promotions, codes, jobs"),
        (name = "elastic-path", description = "What both Elastic Path dialects share"),
        (name = "zuora", description = "Zuora custom objects and bulk jobs"),
        (name = "v1", description = "jobline's own operator API: jobs of every dialect in \
                                     canonical states, queues, and a stream of state changes"),
        (name = "probes", description = "Liveness and readiness"),
        (name = "meta", description = "This description"),
    )
)]
struct ApiDoc;

/// Any JSON object: bodies whose fields are the client's own (promotion attributes, Zuora
/// custom fields) or that each kind of record shapes differently.
#[derive(Debug, ToSchema)]
#[schema(value_type = Object)]
pub struct AnyObject(pub serde_json::Map<String, serde_json::Value>);

/// `{"data": {…}}`: one catalog record.
#[derive(Debug, ToSchema)]
pub struct EpOne {
    /// The record, shaped by its kind.
    #[schema(value_type = Object)]
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// `{"data": [{…}]}`: every record under another, unpaged.
#[derive(Debug, ToSchema)]
pub struct EpListDocument {
    /// The records.
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<serde_json::Value>,
}

/// A page of catalog records with Elastic Path's `links` and `meta`.
#[derive(Debug, ToSchema)]
pub struct EpPageDocument {
    /// The records.
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<serde_json::Value>,
    /// Page links.
    pub links: crate::ep::params::Links,
    /// Page and result counts.
    pub meta: crate::ep::params::ListMeta,
}

/// Elastic Path's paging parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EpPage {
    /// Records per page.
    #[serde(rename = "page[limit]")]
    pub limit: Option<u64>,
    /// Records to skip.
    #[serde(rename = "page[offset]")]
    pub offset: Option<u64>,
}

/// The form of `POST /oauth/access_token`.
#[derive(Debug, ToSchema)]
pub struct EpTokenForm {
    /// `client_credentials` or `implicit`.
    pub grant_type: String,
    /// The client's id.
    pub client_id: String,
    /// The client's secret (`client_credentials` only).
    pub client_secret: Option<String>,
}

/// The form of `POST /oauth/token`.
#[derive(Debug, ToSchema)]
pub struct ZuoraTokenForm {
    /// `client_credentials`.
    pub grant_type: String,
    /// The client's id.
    pub client_id: String,
    /// The client's secret.
    pub client_secret: String,
}

/// `POST`/`PUT` of a promotion: `{"data": {…}}` (the bare object is accepted too); other
/// attributes are the client's own and kept as given.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PromotionBody {
    /// The promotion.
    pub data: PromotionAttributes,
}

/// A promotion's attributes in a request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PromotionAttributes {
    /// `promotion` or `rule_promotion`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Required on create.
    pub name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// The most codes the promotion may have (a jobline extension).
    pub max_codes: Option<u64>,
}

/// `POST`/`DELETE` of codes: `{"data": {"type": "promotion_codes", "codes": […]}}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CodesBody {
    /// The codes.
    pub data: CodesData,
}

/// The codes of a request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CodesData {
    /// `promotion_codes`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The codes.
    pub codes: Vec<CodeSpec>,
}

/// One code of a request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CodeSpec {
    /// The code itself.
    pub code: String,
    /// How often it may be used.
    pub max_uses: Option<u64>,
    /// What one use consumes (`per_application`, `per_checkout`, `per_item`, `per_cart`).
    pub consume_unit: Option<String>,
}

/// `POST …/jobs`: `{"data": {"type": "promotion_job", "job_type": …}}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PromotionJobBody {
    /// The job.
    pub data: PromotionJobSpec,
}

/// A promotion job of a request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PromotionJobSpec {
    /// `promotion_job`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `code_generate` or `code_export`.
    #[schema(example = "code_generate")]
    pub job_type: String,
    /// A name for the job.
    pub name: Option<String>,
    /// `code_generate`: `number_of_codes`, `consume_unit`, `max_uses_per_code`, …
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<serde_json::Value>,
}

/// `POST /objects/records/default/{object}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RecordsBody {
    /// The records, custom fields flat.
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<serde_json::Value>,
    /// Keep the good records when some are refused.
    #[serde(rename = "allowPartialSuccess")]
    pub allow_partial_success: Option<bool>,
}

/// `POST /objects/definitions/default`: `{"definitions": {name: schema}}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DefinitionsBody {
    /// One JSON schema per object name.
    #[schema(value_type = Object)]
    pub definitions: serde_json::Value,
}

/// A multipart upload with the file in its `file` part.
#[derive(Debug, ToSchema)]
pub struct Upload {
    /// The file.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// What a generic catalog operation answers.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// 200 with a page of records.
    Page,
    /// 200 with every record under another.
    List,
    /// 200 with one record.
    One,
    /// 201 with the new record.
    Created,
    /// 204, nothing.
    NoContent,
}

/// What a generic catalog operation reads from the body.
#[derive(Debug, Clone, Copy)]
enum Body {
    /// Nothing.
    Empty,
    /// A JSON:API document with one resource.
    Resource,
    /// A list of resource identifiers.
    Identifiers,
}

/// The operations of the generic catalog handlers (`pxm::catalog`), one row each:
/// (method, path, summary, body, answer).
const CATALOG: &[(HttpMethod, &str, &str, Body, Answer)] = {
    use Answer::*;
    use Body::{Empty, Identifiers, Resource};
    use HttpMethod::{Delete, Get, Post, Put};
    &[
        (Get, "/pcm/products", "a page of products", Empty, Page),
        (Post, "/pcm/products", "creates a product", Resource, Created),
        (Get, "/pcm/products/{id}", "a product", Empty, One),
        (Put, "/pcm/products/{id}", "updates a product", Resource, One),
        (Delete, "/pcm/products/{id}", "deletes a product", Empty, NoContent),
        (Get, "/pcm/products/{id}/variations", "a product's variations", Empty, List),
        (Get, "/pcm/products/{id}/nodes", "the nodes a product is in", Empty, List),
        (
            Post,
            "/pcm/products/{id}/relationships/variations",
            "links variations",
            Identifiers,
            NoContent,
        ),
        (
            Delete,
            "/pcm/products/{id}/relationships/variations",
            "unlinks variations",
            Identifiers,
            NoContent,
        ),
        (Get, "/pcm/hierarchies", "a page of hierarchies", Empty, Page),
        (Post, "/pcm/hierarchies", "creates a hierarchy", Resource, Created),
        (Get, "/pcm/hierarchies/{id}", "a hierarchy", Empty, One),
        (Put, "/pcm/hierarchies/{id}", "updates a hierarchy", Resource, One),
        (Delete, "/pcm/hierarchies/{id}", "deletes a hierarchy", Empty, NoContent),
        (Get, "/pcm/hierarchies/{id}/nodes", "a page of a hierarchy's nodes", Empty, Page),
        (Get, "/pcm/hierarchies/{id}/nodes/{node}", "a node", Empty, One),
        (Put, "/pcm/hierarchies/{id}/nodes/{node}", "updates a node", Resource, One),
        (Delete, "/pcm/hierarchies/{id}/nodes/{node}", "deletes a node", Empty, NoContent),
        (
            Get,
            "/pcm/hierarchies/{id}/nodes/{node}/children",
            "a page of a node's children",
            Empty,
            Page,
        ),
        (
            Post,
            "/pcm/hierarchies/{id}/nodes/{node}/relationships/products",
            "links products",
            Identifiers,
            NoContent,
        ),
        (
            Delete,
            "/pcm/hierarchies/{id}/nodes/{node}/relationships/products",
            "unlinks products",
            Identifiers,
            NoContent,
        ),
        (Get, "/pcm/variations", "a page of variations", Empty, Page),
        (Post, "/pcm/variations", "creates a variation", Resource, Created),
        (Get, "/pcm/variations/{id}", "a variation", Empty, One),
        (Put, "/pcm/variations/{id}", "updates a variation", Resource, One),
        (Delete, "/pcm/variations/{id}", "deletes a variation", Empty, NoContent),
        (Get, "/pcm/variations/{id}/options", "a variation's options", Empty, List),
        (Post, "/pcm/variations/{id}/options", "creates an option", Resource, Created),
        (Get, "/pcm/variations/{id}/options/{option}", "an option", Empty, One),
        (Put, "/pcm/variations/{id}/options/{option}", "updates an option", Resource, One),
        (Delete, "/pcm/variations/{id}/options/{option}", "deletes an option", Empty, NoContent),
        (Get, "/pcm/pricebooks", "a page of price books", Empty, Page),
        (Post, "/pcm/pricebooks", "creates a price book", Resource, Created),
        (Get, "/pcm/pricebooks/{id}", "a price book", Empty, One),
        (Put, "/pcm/pricebooks/{id}", "updates a price book", Resource, One),
        (Delete, "/pcm/pricebooks/{id}", "deletes a price book", Empty, NoContent),
        (Get, "/pcm/pricebooks/{id}/prices", "a page of a book's prices", Empty, Page),
        (Post, "/pcm/pricebooks/{id}/prices", "creates a price", Resource, Created),
        (Get, "/pcm/pricebooks/{id}/prices/{price}", "a price", Empty, One),
        (Put, "/pcm/pricebooks/{id}/prices/{price}", "updates a price", Resource, One),
        (Delete, "/pcm/pricebooks/{id}/prices/{price}", "deletes a price", Empty, NoContent),
    ]
};

fn json_ref(name: &str) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(Ref::from_schema_name(name))).build()
}

/// Adds the generic catalog operations of [`CATALOG`].
struct Catalog;

impl Modify for Catalog {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (method, path, summary, body, answer) in CATALOG {
            let mut op = OperationBuilder::new()
                .tag("pxm")
                .summary(Some(*summary))
                .security(SecurityRequirement::new("bearer", Vec::<String>::new()));
            // Every `{name}` of the path is a string parameter.
            for name in path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')) {
                op = op.parameter(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
                );
            }
            if matches!(answer, Answer::Page) {
                for (name, description) in
                    [("page[limit]", "records per page"), ("page[offset]", "records to skip")]
                {
                    op = op.parameter(
                        ParameterBuilder::new()
                            .name(name)
                            .parameter_in(ParameterIn::Query)
                            .required(Required::False)
                            .description(Some(description))
                            .schema(Some(
                                ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)),
                            )),
                    );
                }
            }
            let body = match body {
                Body::Empty => None,
                Body::Resource => Some("Document"),
                Body::Identifiers => Some("Identifiers"),
            };
            if let Some(schema) = body {
                op = op.request_body(Some(
                    RequestBodyBuilder::new()
                        .content("application/json", json_ref(schema))
                        .required(Some(Required::True))
                        .build(),
                ));
            }
            let ok = match answer {
                Answer::Page => ("200", "a page of records", Some("EpPageDocument")),
                Answer::List => ("200", "the records", Some("EpListDocument")),
                Answer::One => ("200", "the record", Some("EpOne")),
                Answer::Created => ("201", "the new record", Some("EpOne")),
                Answer::NoContent => ("204", "done", None),
            };
            let mut response = ResponseBuilder::new().description(ok.1);
            if let Some(schema) = ok.2 {
                response = response.content("application/json", json_ref(schema));
            }
            op = op.response(ok.0, response.build()).response(
                "4XX",
                ResponseBuilder::new()
                    .description("refused, in Elastic Path's error shape")
                    .content("application/json", json_ref("ErrorDocument"))
                    .build(),
            );
            openapi.paths.add_path_operation(*path, vec![method.clone()], op.build());
        }
    }
}

/// Mounts the Promotions operations a second time under `/v2/rule-promotions`, as the router
/// does (`promotions::routes`).
struct RuleFamily;

impl Modify for RuleFamily {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let standard: Vec<_> = openapi
            .paths
            .paths
            .iter()
            .filter_map(|(path, item)| {
                let rest = path.strip_prefix("/v2/promotions")?;
                Some((format!("/v2/rule-promotions{rest}"), item.clone()))
            })
            .collect();
        openapi.paths.paths.extend(standard);
    }
}

/// The bearer scheme every authenticated operation names.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Names every operation after its method and path (`get_pcm_jobs_id`): handlers of different
/// dialects share names (`list`), and the Promotions handlers are mounted twice, but OpenAPI
/// wants each `operationId` once.
struct UniqueOperationIds;

impl Modify for UniqueOperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let slug: String = path
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect::<String>()
                .split('_')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("_");
            let ops = [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("patch", &mut item.patch),
            ];
            for (method, op) in ops {
                if let Some(op) = op {
                    op.operation_id = Some(format!("{method}_{slug}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The document on its own: valid OpenAPI 3.1 whose every `$ref` resolves, and exactly the
    //! operations of [`listed_routes`]. That the router serves them is checked through the real app in
    //! `crates/jobline/tests/api/openapi.rs`.

    use super::{document, listed_routes};
    use serde_json::Value;
    use std::collections::BTreeSet;

    fn doc() -> Value {
        serde_json::to_value(document()).unwrap()
    }

    /// Every `$ref` in `v`, with where it was found.
    fn refs<'v>(v: &'v Value, at: &str, out: &mut Vec<(String, &'v str)>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push((at.to_owned(), r)),
                        _ => refs(v, &format!("{at}/{k}"), out),
                    }
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    refs(v, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    /// The value a local JSON pointer `#/…` names in `doc`.
    fn resolve<'d>(doc: &'d Value, pointer: &str) -> Option<&'d Value> {
        doc.pointer(pointer.strip_prefix('#')?)
    }

    #[test]
    fn the_document_is_openapi_3_1_and_every_ref_resolves() {
        let doc = doc();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."), "{}", doc["openapi"]);
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
        let mut found = Vec::new();
        refs(&doc, "", &mut found);
        assert!(!found.is_empty());
        for (at, r) in found {
            assert!(resolve(&doc, r).is_some(), "{at}: $ref {r} does not resolve");
        }
        let scheme = &doc["components"]["securitySchemes"]["bearer"];
        assert_eq!(scheme["scheme"], "bearer", "{scheme}");
    }

    #[test]
    fn every_operation_has_a_unique_id_and_names_only_known_security_schemes() {
        let doc = doc();
        let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_default().to_owned();
                assert!(ids.insert(id.clone()), "{method} {path}: operationId {id} twice");
                for requirement in op["security"].as_array().into_iter().flatten() {
                    for name in requirement.as_object().unwrap().keys() {
                        assert!(schemes.contains_key(name), "{method} {path}: scheme {name}");
                    }
                }
                // Every `{name}` of the path is declared as a path parameter.
                let declared: BTreeSet<&str> = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                let in_path: BTreeSet<&str> = path
                    .split('/')
                    .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                    .collect();
                assert_eq!(declared, in_path, "{method} {path}");
            }
        }
    }

    #[test]
    fn the_document_describes_exactly_the_routes_listed() {
        let doc = doc();
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object().unwrap().keys().map(move |m| (m.to_uppercase(), path.clone()))
            })
            .collect();
        let routes = listed_routes();
        let listed: BTreeSet<(String, String)> =
            routes.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
        assert_eq!(listed.len(), routes.len(), "a route is listed twice");
        let undocumented: Vec<_> = listed.difference(&documented).collect();
        let unlisted: Vec<_> = documented.difference(&listed).collect();
        assert!(undocumented.is_empty(), "routes without an operation: {undocumented:?}");
        assert!(unlisted.is_empty(), "operations not in listed_routes(): {unlisted:?}");
    }

    /// The `/v1` router keeps its own list of routes (`native::ROUTES`); each must be here too,
    /// so a route added to `/v1` cannot go undocumented.
    #[test]
    fn every_v1_route_is_listed() {
        for route in crate::native::ROUTES {
            assert!(listed_routes().contains(&route), "{route:?} is not in listed_routes()");
        }
    }
}
