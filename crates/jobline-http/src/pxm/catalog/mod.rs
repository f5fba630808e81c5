//! The PXM catalog endpoints a client needs to set up what jobs act on and to see their
//! results (`shared/spec/vendor-apis.md` A.13): products, hierarchies and nodes with their
//! product links, variations and options with product links, price books and prices; plus the
//! two job routes that act on one resource (hierarchy duplicate, child-product build).
//!
//! Handlers parse the request document, call one store function, and render; rules live in
//! `jobline_core::catalog` and the store, status codes in `ep::error`.
//!
//! Seven kinds of record share a handful of shapes (create, list a page, read, update, delete
//! one record; list the records under another; link and unlink), so each shape is one generic
//! handler here over an [`Entity`], and each entity's module states only what differs: its
//! name in a 404, its ids in the path, its wire form, how the request's attributes fill its
//! input, and which store calls it makes. A record inside another (a node in a hierarchy, an
//! option in a variation, a price in a book) must be in the one its path names, else it is
//! not found. An update hands the store the request's attributes as a closure over the record
//! as stored, so the store reads, merges and writes it in one transaction.

pub(crate) mod hierarchies;
mod pricebooks;
pub(crate) mod products;
mod variations;

pub use hierarchies::{children, create_node, duplicate_hierarchy, node_products};
pub use products::build_children;

use super::dto::JobDocument;
use super::resource::{self, Document, Identifiers};
use crate::ep::auth::EpAdmin;
use crate::ep::error::EpError;
use crate::ep::params::{links_and_meta, ListQuery};
use crate::ep::{EpJson, NoContent};
use crate::request_id::RequestId;
use crate::state::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, OriginalUri, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, Uri};
use axum::routing::{get, MethodRouter};
use axum::Json;
use jobline_core::{kinds, KindSpec, NewJob, TenantId, ValidationError};
use jobline_store::{CatalogPage, Store, StoreError};
use serde_json::{json, Map, Value};
use std::future::Future;

type Created = crate::ep::Created<Json<Value>>;

fn one(v: Value) -> Json<Value> {
    let mut doc = Map::new();
    doc.insert("data".into(), v);
    Json(Value::Object(doc))
}

fn created(v: Value) -> Created {
    crate::ep::Created(one(v))
}

/// Parses an id from the path; a malformed id is the same 404 as an unknown one.
fn id<T>(parse: fn(&str) -> Result<T, ValidationError>, s: &str, what: &str) -> Result<T, EpError> {
    parse(s).map_err(|_| EpError::not_found(what))
}

/// Store errors of a lookup, with the resource named in the 404.
fn missing(what: &'static str) -> impl Fn(StoreError) -> EpError {
    move |e| match e {
        StoreError::NotFound => EpError::not_found(what),
        other => other.into(),
    }
}

/// A `GET` of a page: the path's segments, and the request line and headers the page's links
/// are built from. The query is parsed only when asked for, after the path's ids.
#[derive(Debug)]
pub struct PageRequest {
    path: Vec<String>,
    headers: HeaderMap,
    uri: Uri,
}

impl<S: Send + Sync> FromRequestParts<S> for PageRequest {
    type Rejection = PathRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, PathRejection> {
        let Path(path) = Path::<Vec<String>>::from_request_parts(parts, state).await?;
        // The path as the client sent it: inside the nested `/pcm` router `parts.uri` has lost
        // its prefix, and links built from it would point at `/products` (404).
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.clone(), |o| o.0.clone());
        Ok(PageRequest { path, headers: parts.headers.clone(), uri })
    }
}

impl PageRequest {
    /// `page[…]` and `filter`.
    fn query(&self) -> Result<ListQuery, EpError> {
        ListQuery::parse(self.uri.query())
    }

    /// A page of records with EP's `links` and `meta`.
    fn answer<T: Entity>(&self, q: &ListQuery, page: &CatalogPage<T>) -> Json<Value> {
        let (links, meta) = links_and_meta(&self.headers, self.uri.path(), q, page.total);
        let data: Vec<Value> = page.items.iter().map(T::render).collect();
        Json(json!({ "data": data, "links": links, "meta": meta }))
    }
}

/// Creates a PXM job on `subject` for the caller's store and answers it (201).
async fn enqueue(
    app: &AppState,
    caller: &EpAdmin,
    rid: &RequestId,
    (kind, subject): (KindSpec, String),
    payload: Value,
) -> Result<crate::ep::Created<Json<JobDocument>>, EpError> {
    let tenant = caller.tenant().clone();
    let queue = kinds::pxm::queue(&tenant);
    let job = NewJob::new(tenant, kind, queue, payload)
        .with_subject(subject)
        .with_origin(Some(rid.as_str().to_owned()), Some(caller.client_id()));
    let job = app.store.enqueue(job).await?;
    crate::observe::record_job_id(job.id);
    Ok(crate::ep::Created(Json(JobDocument { data: super::jobs::render(&job) })))
}

/// The segments of a request path, taken one by one.
type Segments<'p> = std::slice::Iter<'p, String>;

/// Where a kind of record lives: at the top ([`Top`]) or inside a record of another kind
/// (every [`Entity`] is a scope for the records inside it).
pub trait Scope {
    /// What names the place: `()` at the top, else the id of the record it is inside.
    type Key: Copy + PartialEq + Send + Sync + 'static;
    /// Whether the path names the place at all.
    const IN_PATH: bool;

    /// Takes the key from the path's next segment; a malformed id is the same 404 as an
    /// unknown one.
    fn take(path: &mut Segments<'_>) -> Result<Self::Key, EpError>;

    /// Names the place in a not-found answer (`price book not found`).
    fn named(err: EpError) -> EpError;
}

/// The place of top-level records (`/pcm/products`).
#[derive(Debug)]
pub struct Top;

impl Scope for Top {
    type Key = ();
    const IN_PATH: bool = false;

    fn take(_: &mut Segments<'_>) -> Result<(), EpError> {
        Ok(())
    }

    fn named(err: EpError) -> EpError {
        err
    }
}

impl<R: Entity> Scope for R {
    type Key = R::Id;
    const IN_PATH: bool = true;

    fn take(path: &mut Segments<'_>) -> Result<R::Id, EpError> {
        id(R::PARSE, path.next().map_or("", String::as_str), R::NAME)
    }

    fn named(err: EpError) -> EpError {
        match err {
            EpError::NotFound(_) => EpError::not_found(R::NAME),
            other => other,
        }
    }
}

/// A kind of catalog record as the PXM API serves it; the generic handlers below are written
/// once over it.
pub trait Entity: Sized + Send + Sync + 'static {
    /// Its id.
    type Id: Copy + PartialEq + Send + Sync + 'static;
    /// Where it lives: [`Top`], or the kind of record it is inside.
    type Parent: Scope;
    /// What a create or an update carries.
    type Input: Default + Send + Sync;
    /// Its name in a 404 (`product not found`).
    const NAME: &'static str;
    /// Parses its id.
    const PARSE: fn(&str) -> Result<Self::Id, ValidationError>;

    /// The place it is in (compared with the place its path names).
    fn parent(&self) -> <Self::Parent as Scope>::Key;

    /// Its wire form.
    fn render(&self) -> Value;

    /// The input that leaves it as it is: what a partial update's attributes go over.
    fn current(&self) -> Self::Input;

    /// The request resource's attributes (and meta) over `base`.
    fn input(data: &resource::Resource, base: Self::Input) -> Result<Self::Input, EpError>;

    /// Reads record `id`.
    fn get(
        store: &Store,
        tenant: &TenantId,
        id: Self::Id,
    ) -> impl Future<Output = Result<Self, StoreError>> + Send;

    /// Updates record `id` with what `change` makes of it, in the store's one transaction.
    fn update(
        store: &Store,
        tenant: &TenantId,
        id: Self::Id,
        change: impl FnOnce(&Self) -> Result<Self::Input, EpError> + Send,
    ) -> impl Future<Output = Result<Self, EpError>> + Send;

    /// Deletes record `id`.
    fn delete(
        store: &Store,
        tenant: &TenantId,
        id: Self::Id,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// An [`Entity`] created by `POST` to its collection.
pub trait Collection: Entity {
    /// Creates a record in `parent`.
    fn create(
        store: &Store,
        tenant: &TenantId,
        parent: <Self::Parent as Scope>::Key,
        input: &Self::Input,
    ) -> impl Future<Output = Result<Self, StoreError>> + Send;
}

/// An [`Entity`] whose collection `GET` answers a page.
pub trait Paged: Entity {
    /// The page `q` asks for of the records in `parent`.
    fn list(
        store: &Store,
        tenant: &TenantId,
        parent: <Self::Parent as Scope>::Key,
        q: &ListQuery,
    ) -> impl Future<Output = Result<CatalogPage<Self>, EpError>> + Send;
}

/// An [`Entity`] listed whole under a record of another kind (a product's variations).
pub trait Listed: Entity {
    /// The kind of record it is listed under.
    type Owner: Entity;

    /// The records under `owner`.
    fn list_under(
        store: &Store,
        tenant: &TenantId,
        owner: <Self::Owner as Entity>::Id,
    ) -> impl Future<Output = Result<Vec<Self>, StoreError>> + Send;
}

/// An [`Entity`] with a relationship endpoint: `POST` links records of another kind to it,
/// `DELETE` unlinks them.
pub trait Linking: Entity {
    /// The kind of record linked.
    type Other: Entity;
    /// What a link's 404 names when the store finds either side missing.
    const MISSING: &'static str;

    /// Links the pair's second record to its first (`Linked::Yes`), or unlinks them.
    fn set(
        store: &Store,
        tenant: &TenantId,
        pair: (Self::Id, <Self::Other as Entity>::Id),
        to: Linked,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// What a relationship request asks for: `POST` links, `DELETE` unlinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linked {
    /// Linked (`POST`).
    Yes,
    /// Not linked (`DELETE`).
    No,
}

type At<R> = (<<R as Entity>::Parent as Scope>::Key, <R as Entity>::Id);

/// The place and id a record's path names: the place's segment first, the id last.
fn locate<R: Entity>(path: &[String]) -> Result<At<R>, EpError> {
    let mut path = path.iter();
    let parent = R::Parent::take(&mut path)?;
    Ok((parent, R::take(&mut path)?))
}

/// Record `id`, which must be in `parent`.
async fn find<R: Entity>(
    app: &AppState,
    caller: &EpAdmin,
    (parent, id): At<R>,
) -> Result<R, EpError> {
    let record = R::get(&app.store, caller.tenant(), id).await.map_err(missing(R::NAME))?;
    if record.parent() != parent {
        return Err(EpError::not_found(R::NAME));
    }
    Ok(record)
}

/// The record a path names.
async fn load<R: Entity>(app: &AppState, caller: &EpAdmin, path: &[String]) -> Result<R, EpError> {
    find::<R>(app, caller, locate::<R>(path)?).await
}

/// The id of the record a path names, read first only when it lives inside another (to check
/// it is in the one the path names).
async fn target<R: Entity>(
    app: &AppState,
    caller: &EpAdmin,
    path: &[String],
) -> Result<R::Id, EpError> {
    let at = locate::<R>(path)?;
    if R::Parent::IN_PATH {
        find::<R>(app, caller, at).await?;
    }
    Ok(at.1)
}

/// `GET` and `POST` on a collection (`/pcm/products`, `/pcm/pricebooks/{id}/prices`).
pub fn collection<R: Collection + Paged>() -> MethodRouter<AppState> {
    get(list::<R>).post(create::<R>)
}

/// `GET`, `PUT` and `DELETE` on one record (`/pcm/products/{id}`).
pub fn record<R: Entity>() -> MethodRouter<AppState> {
    get(show::<R>).put(update::<R>).delete(delete::<R>)
}

/// `POST` to a collection: a new record from the request's attributes (201).
pub async fn create<R: Collection>(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(path): Path<Vec<String>>,
    EpJson(doc): EpJson<Document>,
) -> Result<Created, EpError> {
    let parent = R::Parent::take(&mut path.iter())?;
    let input = R::input(&doc.data, R::Input::default())?;
    let record = R::create(&app.store, caller.tenant(), parent, &input)
        .await
        .map_err(|e| R::Parent::named(e.into()))?;
    Ok(created(record.render()))
}

/// `GET` on a collection: a page with `page[…]` (and, for products, `filter`).
pub async fn list<R: Paged>(
    State(app): State<AppState>,
    caller: EpAdmin,
    req: PageRequest,
) -> Result<Json<Value>, EpError> {
    let parent = R::Parent::take(&mut req.path.iter())?;
    let q = req.query()?;
    let p = R::list(&app.store, caller.tenant(), parent, &q).await.map_err(R::Parent::named)?;
    Ok(req.answer(&q, &p))
}

/// `GET` one record.
pub async fn show<R: Entity>(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(path): Path<Vec<String>>,
) -> Result<Json<Value>, EpError> {
    Ok(one(load::<R>(&app, &caller, &path).await?.render()))
}

/// `PUT` one record: only the attributes given change.
pub async fn update<R: Entity>(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(path): Path<Vec<String>>,
    EpJson(doc): EpJson<Document>,
) -> Result<Json<Value>, EpError> {
    let (parent, id) = locate::<R>(&path)?;
    let change = |current: &R| {
        if current.parent() != parent {
            return Err(EpError::not_found(R::NAME));
        }
        R::input(&doc.data, current.current())
    };
    let record = R::update(&app.store, caller.tenant(), id, change).await.map_err(R::named)?;
    Ok(one(record.render()))
}

/// `DELETE` one record (with what hangs off it).
pub async fn delete<R: Entity>(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(path): Path<Vec<String>>,
) -> Result<NoContent, EpError> {
    let id = target::<R>(&app, &caller, &path).await?;
    R::delete(&app.store, caller.tenant(), id).await.map_err(missing(R::NAME))?;
    Ok(NoContent)
}

/// `GET` the records under another (`/pcm/products/{id}/variations`), unpaged.
pub async fn listed<R: Listed>(
    State(app): State<AppState>,
    caller: EpAdmin,
    Path(path): Path<Vec<String>>,
) -> Result<Json<Value>, EpError> {
    let owner = R::Owner::take(&mut path.iter())?;
    let items = R::list_under(&app.store, caller.tenant(), owner)
        .await
        .map_err(|e| R::Owner::named(e.into()))?;
    Ok(Json(json!({ "data": items.iter().map(R::render).collect::<Vec<_>>() })))
}

/// `POST` (link) or `DELETE` (unlink) on a record's relationship with records of another
/// kind; the body lists their identifiers.
pub async fn relationships<R: Linking>(
    State(app): State<AppState>,
    caller: EpAdmin,
    method: Method,
    Path(path): Path<Vec<String>>,
    EpJson(ids): EpJson<Identifiers>,
) -> Result<NoContent, EpError> {
    let record = target::<R>(&app, &caller, &path).await?;
    for other in ids.ids()? {
        let other = id(R::Other::PARSE, &other, R::Other::NAME)?;
        let to = if method == Method::DELETE { Linked::No } else { Linked::Yes };
        let done = R::set(&app.store, caller.tenant(), (record, other), to).await;
        done.map_err(missing(R::MISSING))?;
    }
    Ok(NoContent)
}
