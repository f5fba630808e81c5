//! A client of a running server's `/v1` operator API, for the `jobs` and `queues` commands.
//!
//! Why it exists: `jobline jobs …` talks to a server over HTTP like any other API client (a
//! token from `POST /oauth/access_token`, then bearer requests), so it works against a remote
//! deployment and honours the server's roles and tenant scopes. It never opens the database.
//!
//! What it must never do: print (the CLI does), or interpret a job beyond what the `/v1`
//! contract says: responses stay `serde_json::Value`s, so a field the server adds later shows in
//! `--json` output without a change here.

use crate::config::FileConfig;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// The server the remote commands reach when no URL is given: `jobline serve`'s default address.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// How long one request may take: generous for a big job page, short enough that a dead
/// server does not hang a script. The event stream has no such limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the server is and who to be: shared by every remote command.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RemoteArgs {
    /// Base URL of the jobline server [default: http://127.0.0.1:8080]
    #[arg(long, env = "JOBLINE_URL", value_name = "URL")]
    pub url: Option<String>,

    /// API client id (an operator client sees every tenant; an admin client its own)
    #[arg(long, env = "JOBLINE_CLIENT_ID", value_name = "ID")]
    pub client_id: Option<String>,

    /// API client secret
    #[arg(long, env = "JOBLINE_CLIENT_SECRET", value_name = "SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
}

/// Resolved connection settings.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// Base URL without a trailing slash.
    pub url: String,
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: String,
}

impl RemoteArgs {
    /// The settings: these flags (or their `JOBLINE_*` variables), then the file, then the
    /// default URL; the credentials have no default.
    pub fn resolve(&self, file: &FileConfig) -> Result<RemoteConfig, RemoteError> {
        let url = self.url.clone().or_else(|| file.url.clone()).unwrap_or(DEFAULT_URL.into());
        let client_id =
            self.client_id
                .clone()
                .or_else(|| file.client_id.clone())
                .ok_or(RemoteError::Settings(
                "no client id: pass --client-id, set JOBLINE_CLIENT_ID, or put client_id in the \
                 config file"
                    .into(),
            ))?;
        let client_secret =
            self.client_secret.clone().or_else(|| file.client_secret.clone()).ok_or(
                RemoteError::Settings(
                    "no client secret: pass --client-secret, set JOBLINE_CLIENT_SECRET, or put \
                 client_secret in the config file"
                        .into(),
                ),
            )?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(RemoteError::Settings(format!(
                "the server URL must start with http:// or https://, got {url:?}"
            )));
        }
        Ok(RemoteConfig { url: url.trim_end_matches('/').to_owned(), client_id, client_secret })
    }
}

/// What went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The settings are incomplete or malformed.
    #[error("{0}")]
    Settings(String),
    /// The server answered with a `/v1` error (or another non-success status).
    #[error("{message} (HTTP {status})")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The contract's error code (`not_found`, `not_cancellable`, …), if the body had one.
        code: Option<String>,
        /// The server's message.
        message: String,
        /// For `not_cancellable`: the job's current state.
        state: Option<String>,
    },
    /// The server could not be reached or its answer could not be read.
    #[error("cannot reach the server at {url}: {source}")]
    Transport {
        /// The URL asked for.
        url: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
}

impl RemoteError {
    /// Whether the server said the thing asked about does not exist (or is not the caller's).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Api { status: 404, .. })
    }
}

/// A signed-in connection to a server.
#[derive(Debug, Clone)]
pub struct Remote {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Remote {
    /// Gets an access token with the client's credentials.
    pub async fn connect(config: &RemoteConfig) -> Result<Self, RemoteError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("jobline-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| RemoteError::Transport { url: config.url.clone(), source })?;
        let url = format!("{}/oauth/access_token", config.url);
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", config.client_id.as_str()),
            ("client_secret", config.client_secret.as_str()),
        ];
        let response = http
            .post(&url)
            .form(&form)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|source| RemoteError::Transport { url: url.clone(), source })?;
        let status = response.status();
        if !status.is_success() {
            // The token endpoint answers in Elastic Path's shape, not /v1's: say it plainly.
            return Err(RemoteError::Api {
                status: status.as_u16(),
                code: None,
                message: format!("the server refused client {}'s credentials", config.client_id),
                state: None,
            });
        }
        let body: Value =
            response.json().await.map_err(|source| RemoteError::Transport { url, source })?;
        let token = body["access_token"].as_str().unwrap_or_default().to_owned();
        Ok(Self { http, base: config.url.clone(), token })
    }

    /// `GET /v1/jobs` with `query` (the API's filters, passed through).
    pub async fn list_jobs(&self, query: &[(&str, String)]) -> Result<Value, RemoteError> {
        self.call(Method::GET, "/v1/jobs", query).await
    }

    /// `GET /v1/jobs/{id}`.
    pub async fn get_job(&self, id: &str) -> Result<Value, RemoteError> {
        self.call(Method::GET, &format!("/v1/jobs/{}", segment(id)), &[]).await
    }

    /// `POST /v1/jobs/{id}/cancel`.
    pub async fn cancel_job(&self, id: &str) -> Result<Value, RemoteError> {
        self.call(Method::POST, &format!("/v1/jobs/{}/cancel", segment(id)), &[]).await
    }

    /// `GET /v1/queues` with `query`.
    pub async fn queues(&self, query: &[(&str, String)]) -> Result<Value, RemoteError> {
        self.call(Method::GET, "/v1/queues", query).await
    }

    /// Opens `GET /v1/events` with `query` (for example `job` and `last_event_id`).
    pub async fn events(&self, query: &[(&str, String)]) -> Result<EventStream, RemoteError> {
        let url = format!("{}/v1/events", self.base);
        let response = self
            .http
            .get(&url)
            .query(query)
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|source| RemoteError::Transport { url: url.clone(), source })?;
        let response = check(response).await?;
        Ok(EventStream { response, url, buffer: String::new() })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value, RemoteError> {
        let url = format!("{}{path}", self.base);
        let response = self
            .http
            .request(method, &url)
            .query(query)
            .bearer_auth(&self.token)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|source| RemoteError::Transport { url: url.clone(), source })?;
        let response = check(response).await?;
        response.json().await.map_err(|source| RemoteError::Transport { url, source })
    }
}

/// `response` if it succeeded, else its `/v1` error.
async fn check(response: reqwest::Response) -> Result<reqwest::Response, RemoteError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let error = &body["error"];
    let text = |v: &Value| v.as_str().map(str::to_owned);
    Err(RemoteError::Api {
        status: status.as_u16(),
        code: text(&error["code"]),
        message: text(&error["message"]).unwrap_or_else(|| default_message(status)),
        state: text(&error["state"]),
    })
}

fn default_message(status: StatusCode) -> String {
    match status {
        StatusCode::UNAUTHORIZED => "the server refused the access token".into(),
        StatusCode::FORBIDDEN => "this client may not use the operator API".into(),
        StatusCode::NOT_FOUND => "not found (is this a jobline server with the /v1 API?)".into(),
        s => format!("the server answered {s}"),
    }
}

/// A job id as one path segment: ids are UUIDs, but a typo must not reach another route.
fn segment(id: &str) -> String {
    id.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c.to_string() } else { "_".into() })
        .collect()
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// Its `id:` (the store's event id), if any.
    pub id: Option<String>,
    /// Its `event:` name (`message` when absent, as in browsers).
    pub event: String,
    /// Its `data:` lines joined by newlines.
    pub data: String,
}

/// The events of an open `/v1/events` response, read as they arrive.
#[derive(Debug)]
pub struct EventStream {
    response: reqwest::Response,
    url: String,
    buffer: String,
}

impl EventStream {
    /// The next event, or `None` when the server closed the stream. Comments
    /// (`: keep-alive`) are skipped.
    pub async fn next(&mut self) -> Result<Option<SseEvent>, RemoteError> {
        loop {
            if let Some(event) = take_event(&mut self.buffer) {
                match event {
                    Some(event) => return Ok(Some(event)),
                    None => continue,
                }
            }
            let chunk = self
                .response
                .chunk()
                .await
                .map_err(|source| RemoteError::Transport { url: self.url.clone(), source })?;
            let Some(chunk) = chunk else { return Ok(None) };
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// Takes the first complete block (ended by a blank line) off `buffer`: `Some(Some(event))`
/// for an event, `Some(None)` for a block with no data (a comment), `None` if no block is
/// complete yet.
fn take_event(buffer: &mut String) -> Option<Option<SseEvent>> {
    if buffer.contains('\r') {
        *buffer = buffer.replace("\r\n", "\n").replace('\r', "\n");
    }
    let end = buffer.find("\n\n")?;
    let block: String = buffer.drain(..end + 2).collect();
    let (mut id, mut event, mut data) = (None, None, Vec::new());
    for line in block.lines() {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = Some(value.to_owned()),
            "event" => event = Some(value.to_owned()),
            "data" => data.push(value),
            _ => {}
        }
    }
    if data.is_empty() {
        return Some(None);
    }
    Some(Some(SseEvent {
        id,
        event: event.unwrap_or_else(|| "message".into()),
        data: data.join("\n"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_blocks_parse_across_chunks_and_skip_comments() {
        let mut buffer = String::from(": keep-alive\n\nid: 7\nevent: job\ndata: {\"a\":");
        assert_eq!(take_event(&mut buffer), Some(None), "the comment block");
        assert_eq!(take_event(&mut buffer), None, "the event is not complete yet");
        buffer.push_str("1}\r\n\r\n");
        let event = take_event(&mut buffer).unwrap().unwrap();
        assert_eq!(
            event,
            SseEvent { id: Some("7".into()), event: "job".into(), data: "{\"a\":1}".into() }
        );
        assert!(buffer.is_empty());
    }

    #[test]
    fn settings_come_from_flags_then_the_file_and_credentials_are_required() {
        let file =
            FileConfig::parse("url = \"http://h:1/\"\nclient_id = \"f\"\nclient_secret = \"s\"")
                .unwrap();
        let flags = RemoteArgs { client_id: Some("c".into()), ..RemoteArgs::default() };
        let config = flags.resolve(&file).unwrap();
        assert_eq!(
            (config.url.as_str(), config.client_id.as_str(), config.client_secret.as_str()),
            ("http://h:1", "c", "s")
        );
        let none = RemoteArgs::default().resolve(&FileConfig::default()).unwrap_err();
        assert!(none.to_string().contains("--client-id"), "{none}");
        let bad = RemoteArgs {
            url: Some("h:1".into()),
            client_id: Some("c".into()),
            client_secret: Some("s".into()),
        };
        assert!(bad.resolve(&FileConfig::default()).unwrap_err().to_string().contains("http://"));
    }

    #[test]
    fn ids_stay_one_path_segment() {
        assert_eq!(segment("0193a-b"), "0193a-b");
        assert_eq!(segment("../x?y"), "___x_y");
    }
}
