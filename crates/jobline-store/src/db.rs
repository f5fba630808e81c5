//! One way to run SQL on either engine: a [`Sql`] value (text with its `$n` binds), run on a
//! [`Tx`] (a write transaction) or a [`Read`] (a pooled read connection).
//!
//! Why not `sqlx::Any`: SQLite needs `BEGIN IMMEDIATE` (one writer, taken up front) and
//! PostgreSQL needs `pg_notify` inside the transaction; both are kept here, and the rest of the
//! crate writes every statement once. Both engines take `$n` placeholders, so one text serves
//! both; where the dialects differ, the caller matches on [`Tx::backend`].
//!
//! Never build SQL text from input here or in a caller: input goes in binds. Text pushed with
//! [`Sql::push`] comes from fixed identifiers (column names from a whitelist, state names).

use crate::{Backend, Db, Store, StoreError};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, FromRow, PgConnection, Postgres, Sqlite, SqliteConnection, Transaction};
use std::borrow::Cow;
use std::fmt::Write as _;

/// A value bound to a `$n` placeholder. Nulls are typed, because PostgreSQL checks a bound
/// null's type against the column it meets.
#[derive(Debug, Clone)]
pub(crate) enum Arg<'a> {
    Text(Option<Cow<'a, str>>),
    Int(Option<i64>),
    Bytes(Option<Cow<'a, [u8]>>),
    /// A `text[]` (PostgreSQL only: set-based writes through `UNNEST`).
    TextArray(Vec<Option<String>>),
    /// A `bigint[]` (PostgreSQL only).
    IntArray(Vec<i64>),
}

impl From<Vec<Option<String>>> for Arg<'_> {
    fn from(v: Vec<Option<String>>) -> Self {
        Arg::TextArray(v)
    }
}

impl From<Vec<i64>> for Arg<'_> {
    fn from(v: Vec<i64>) -> Self {
        Arg::IntArray(v)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Some(Cow::Borrowed(v)))
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(Some(Cow::Borrowed(v.as_str())))
    }
}

impl From<String> for Arg<'_> {
    fn from(v: String) -> Self {
        Arg::Text(Some(Cow::Owned(v)))
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::Text(v.map(Cow::Borrowed))
    }
}

impl From<Option<String>> for Arg<'_> {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v.map(Cow::Owned))
    }
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}

impl From<bool> for Arg<'_> {
    /// Booleans are stored as 0/1 integers on both engines.
    fn from(v: bool) -> Self {
        Arg::Int(Some(i64::from(v)))
    }
}

impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(v: &'a [u8]) -> Self {
        Arg::Bytes(Some(Cow::Borrowed(v)))
    }
}

impl From<Vec<u8>> for Arg<'_> {
    fn from(v: Vec<u8>) -> Self {
        Arg::Bytes(Some(Cow::Owned(v)))
    }
}

/// SQL text with its binds, for either engine.
///
/// Two ways to build one: `Sql::new("… WHERE id = $1").bind(id)` for a fixed statement, or
/// [`Sql::push`]/[`Sql::push_bind`]/[`Sql::push_values`] to build one at run time, where each
/// bind gets the next `$n`.
#[derive(Debug, Clone)]
pub(crate) struct Sql<'a> {
    text: Cow<'a, str>,
    args: Vec<Arg<'a>>,
}

impl<'a> Sql<'a> {
    /// A statement whose text is complete (its `$n` binds follow with [`Sql::bind`]).
    pub(crate) fn new(text: impl Into<Cow<'a, str>>) -> Self {
        Sql { text: text.into(), args: Vec::new() }
    }

    /// Binds the next `$n` of a fixed statement.
    pub(crate) fn bind(mut self, value: impl Into<Arg<'a>>) -> Self {
        self.args.push(value.into());
        self
    }

    /// Appends fixed text (never input).
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.to_mut().push_str(text);
        self
    }

    /// Appends the next placeholder, `$n`, and binds `value` to it.
    pub(crate) fn push_bind(&mut self, value: impl Into<Arg<'a>>) -> &mut Self {
        self.args.push(value.into());
        let n = self.args.len();
        let _ = write!(self.text.to_mut(), "${n}");
        self
    }

    /// Appends `v1, v2, …` as binds, separated by commas (the inside of an `IN (…)`).
    pub(crate) fn push_list<T: Into<Arg<'a>>>(
        &mut self,
        values: impl IntoIterator<Item = T>,
    ) -> &mut Self {
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.push_bind(v);
        }
        self
    }

    /// Appends `VALUES (…), (…)`: one tuple per item, filled by `row`.
    pub(crate) fn push_values<T>(
        &mut self,
        items: impl IntoIterator<Item = T>,
        mut row: impl FnMut(&mut Values<'_, 'a>, T),
    ) -> &mut Self {
        self.push("VALUES ");
        for (i, item) in items.into_iter().enumerate() {
            self.push(if i == 0 { "(" } else { ", (" });
            row(&mut Values { sql: self, first: true }, item);
            self.push(")");
        }
        self
    }

    /// The text as it will be sent.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The text for SQLite. SQLite looks every `$n` (and `?n`) up in a list while it parses,
    /// which is quadratic in the binds of a statement (a 500-row insert has 7,000), while a bare
    /// `?` is just the next index. So where the placeholders run `$1, $2, …` in order, each
    /// once (every statement built with `push_bind`), they are sent as `?`; a statement that
    /// reuses one (`$1 … $1`) keeps its numbers. No statement has a `$` in a string literal.
    fn sqlite_text(&self) -> Cow<'_, str> {
        if !self.text.contains('$') {
            return Cow::Borrowed(&self.text);
        }
        let mut out = String::with_capacity(self.text.len());
        let mut rest = self.text.as_ref();
        let mut next = 1usize;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let digits = rest[at + 1..].bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                out.push('$');
                rest = &rest[at + 1..];
                continue;
            }
            if rest[at + 1..at + 1 + digits].parse::<usize>().ok() != Some(next) {
                return Cow::Borrowed(&self.text); // out of order or reused: keep `$n`
            }
            next += 1;
            out.push('?');
            rest = &rest[at + 1 + digits..];
        }
        out.push_str(rest);
        Cow::Owned(out)
    }

    fn sqlite_args(&self) -> Result<SqliteArguments<'_>, StoreError> {
        let mut out = SqliteArguments::default();
        for a in &self.args {
            match a {
                Arg::Text(v) => out.add(v.as_deref()),
                Arg::Int(v) => out.add(*v),
                Arg::Bytes(v) => out.add(v.as_deref()),
                Arg::TextArray(_) | Arg::IntArray(_) => {
                    return Err(StoreError::Config("arrays are bound on PostgreSQL only".into()))
                }
            }
            .map_err(bind_error)?;
        }
        Ok(out)
    }

    fn pg_args(&self) -> Result<PgArguments, StoreError> {
        let mut out = PgArguments::default();
        for a in &self.args {
            match a {
                Arg::Text(v) => out.add(v.as_deref()),
                Arg::Int(v) => out.add(*v),
                Arg::Bytes(v) => out.add(v.as_deref()),
                Arg::TextArray(v) => out.add(v),
                Arg::IntArray(v) => out.add(v),
            }
            .map_err(bind_error)?;
        }
        Ok(out)
    }
}

fn bind_error(e: sqlx::error::BoxDynError) -> StoreError {
    StoreError::Unavailable(sqlx::Error::Encode(e))
}

/// One tuple of [`Sql::push_values`].
pub(crate) struct Values<'s, 'a> {
    sql: &'s mut Sql<'a>,
    first: bool,
}

impl<'a> Values<'_, 'a> {
    /// The next value of the tuple, bound.
    pub(crate) fn bind(&mut self, value: impl Into<Arg<'a>>) -> &mut Self {
        if !std::mem::take(&mut self.first) {
            self.sql.push(", ");
        }
        self.sql.push_bind(value);
        self
    }
}

/// A row type readable from both engines (what `#[derive(sqlx::FromRow)]` gives).
pub(crate) trait FromBoth:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

impl<T> FromBoth for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

/// A borrowed connection of either engine: what [`Tx`] and [`Read`] run their statements on.
pub(crate) enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

impl Conn<'_> {
    async fn execute(self, sql: &Sql<'_>) -> Result<u64, StoreError> {
        Ok(match self {
            Conn::Sqlite(c) => {
                let text = sql.sqlite_text();
                sqlx::query_with(&text, sql.sqlite_args()?).execute(c).await?.rows_affected()
            }
            Conn::Postgres(c) => {
                sqlx::query_with(sql.text(), sql.pg_args()?).execute(c).await?.rows_affected()
            }
        })
    }

    async fn fetch_optional<T: FromBoth>(self, sql: &Sql<'_>) -> Result<Option<T>, StoreError> {
        Ok(match self {
            Conn::Sqlite(c) => {
                let text = sql.sqlite_text();
                sqlx::query_as_with(&text, sql.sqlite_args()?).fetch_optional(c).await?
            }
            Conn::Postgres(c) => {
                sqlx::query_as_with(sql.text(), sql.pg_args()?).fetch_optional(c).await?
            }
        })
    }

    async fn fetch_all<T: FromBoth>(self, sql: &Sql<'_>) -> Result<Vec<T>, StoreError> {
        Ok(match self {
            Conn::Sqlite(c) => {
                let text = sql.sqlite_text();
                sqlx::query_as_with(&text, sql.sqlite_args()?).fetch_all(c).await?
            }
            Conn::Postgres(c) => {
                sqlx::query_as_with(sql.text(), sql.pg_args()?).fetch_all(c).await?
            }
        })
    }
}

/// Runs statements: the four ways every store function talks to the database. Implemented by
/// [`Tx`] and [`Read`], so a helper that only reads can take either.
pub(crate) trait Queries {
    /// The connection the next statement runs on.
    fn conn(&mut self) -> Conn<'_>;

    /// Which engine this is, for the few statements that differ.
    fn backend(&self) -> Backend;

    /// Runs a statement; returns the rows it affected.
    async fn execute(&mut self, sql: Sql<'_>) -> Result<u64, StoreError> {
        self.conn().execute(&sql).await
    }

    /// The one row a statement returns; none is `NotFound`.
    async fn fetch_one<T: FromBoth>(&mut self, sql: Sql<'_>) -> Result<T, StoreError> {
        self.conn().fetch_optional(&sql).await?.ok_or(StoreError::NotFound)
    }

    /// The row a statement returns, if any.
    async fn fetch_optional<T: FromBoth>(&mut self, sql: Sql<'_>) -> Result<Option<T>, StoreError> {
        self.conn().fetch_optional(&sql).await
    }

    /// Every row a statement returns.
    async fn fetch_all<T: FromBoth>(&mut self, sql: Sql<'_>) -> Result<Vec<T>, StoreError> {
        self.conn().fetch_all(&sql).await
    }
}

/// A write transaction. Dropped without [`Tx::commit`] it rolls back, so `?` anywhere inside
/// leaves nothing behind.
pub(crate) enum Tx {
    /// Begun with `BEGIN IMMEDIATE` on the single write connection: SQLite allows one writer,
    /// and taking the lock up front turns would-be busy errors into a queue in the process.
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    /// Commits.
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

impl Queries for Tx {
    fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Sqlite(tx) => Conn::Sqlite(tx),
            Tx::Postgres(tx) => Conn::Postgres(tx),
        }
    }

    fn backend(&self) -> Backend {
        match self {
            Tx::Sqlite(_) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
        }
    }
}

/// A read connection (a reader of the SQLite pool, so reads go on while a write runs).
pub(crate) enum Read {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl Queries for Read {
    fn conn(&mut self) -> Conn<'_> {
        match self {
            Read::Sqlite(c) => Conn::Sqlite(c),
            Read::Postgres(c) => Conn::Postgres(c),
        }
    }

    fn backend(&self) -> Backend {
        match self {
            Read::Sqlite(_) => Backend::Sqlite,
            Read::Postgres(_) => Backend::Postgres,
        }
    }
}

impl Store {
    /// Begins a write transaction.
    pub(crate) async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match &self.inner.db {
            Db::Sqlite { write, .. } => Tx::Sqlite(write.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Takes a read connection.
    pub(crate) async fn read(&self) -> Result<Read, StoreError> {
        Ok(match &self.inner.db {
            Db::Sqlite { read, .. } => Read::Sqlite(read.acquire().await?),
            Db::Postgres(pool) => Read::Postgres(pool.acquire().await?),
        })
    }
}
