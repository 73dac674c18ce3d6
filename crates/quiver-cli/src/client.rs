//! A small client for a running `quiver serve` (`--server URL`). Failures become one
//! line a person can act on: the server's problem body as `detail (code)`, or which URL
//! could not be reached and how to start a server.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::CliError;

pub struct ApiClient {
    /// `http://host:port`, without a trailing slash.
    base: String,
    http: reqwest::Client,
}

/// The API's `application/problem+json` error body.
#[derive(Debug, Deserialize)]
struct Problem {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

impl ApiClient {
    pub fn new(server: &str) -> Result<Self, CliError> {
        let mut base = server.trim().trim_end_matches('/').to_string();
        if base.is_empty() {
            return Err(CliError::usage(
                "--server needs a URL such as http://127.0.0.1:8080",
            ));
        }
        if !base.contains("://") {
            base = format!("http://{base}");
        }
        if let Some(stripped) = base.strip_suffix("/api/v1") {
            base = stripped.to_string();
        }
        if base.starts_with("https://") {
            return Err(CliError::usage(format!(
                "--server {base}: this build of quiver speaks plain http only; put TLS in a proxy in front of it or use http://"
            )));
        }
        if !base.starts_with("http://") {
            return Err(CliError::usage(format!(
                "--server {base}: expected an http:// URL"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .user_agent(concat!("quiver-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::failed(format!("cannot set up the HTTP client: {e}")))?;
        Ok(ApiClient { base, http })
    }

    /// `GET /api/v1{path}` with query parameters.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, CliError> {
        let request = self.http.get(self.url(path)).query(query);
        self.send(request, &|m| m.to_string()).await
    }

    /// `POST /api/v1{path}` with a JSON body. `explain` rewrites server messages (to turn
    /// `documents[3]` back into the file and line it came from).
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
        explain: &dyn Fn(&str) -> String,
    ) -> Result<T, CliError> {
        let request = self.http.post(self.url(path)).json(body);
        self.send(request, explain).await
    }

    /// `GET /api/v1{path}` answered with a body to stream (a download): the response
    /// once its status is a success. Downloads may take long, so only the connection
    /// and the wait between chunks are bounded, not the whole transfer.
    pub async fn get_stream(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<reqwest::Response, CliError> {
        let request = self
            .http
            .get(self.url(path))
            .query(query)
            .timeout(Duration::from_secs(24 * 3600));
        let response = request.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        if !status.is_success() {
            let bytes = response
                .bytes()
                .await
                .map_err(|e| self.transport_error(&e))?;
            return Err(CliError::failed(describe_failure(status, &bytes)));
        }
        Ok(response)
    }

    /// A transport error during a streamed body.
    pub fn stream_error(&self, e: &reqwest::Error) -> CliError {
        self.transport_error(e)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        explain: &dyn Fn(&str) -> String,
    ) -> Result<T, CliError> {
        let response = request.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        if !status.is_success() {
            return Err(CliError::failed(explain(&describe_failure(status, &bytes))));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            CliError::failed(format!(
                "the server at {} answered with a body this quiver cannot read ({e}); is it a Quiver server of the same version?",
                self.base
            ))
        })
    }

    fn transport_error(&self, e: &reqwest::Error) -> CliError {
        if e.is_connect() {
            return CliError::failed(format!(
                "cannot reach the Quiver server at {} ({}); is it running? Start one with `quiver serve` or point --server at it",
                self.base,
                root_cause(e)
            ));
        }
        if e.is_timeout() {
            return CliError::failed(format!(
                "the Quiver server at {} did not answer in time",
                self.base
            ));
        }
        CliError::failed(format!(
            "request to {} failed: {}",
            self.base,
            root_cause(e)
        ))
    }
}

/// `detail (code)` from a problem body, else the status and the start of the body.
fn describe_failure(status: reqwest::StatusCode, body: &[u8]) -> String {
    if let Ok(problem) = serde_json::from_slice::<Problem>(body) {
        if let Some(text) = problem.detail.or(problem.title) {
            return match problem.code {
                Some(code) => format!("{text} ({code})"),
                None => text,
            };
        }
    }
    let text = String::from_utf8_lossy(body);
    let text: String = text.trim().chars().take(200).collect();
    if text.is_empty() {
        format!("the server answered {status}")
    } else {
        format!("the server answered {status}: {text}")
    }
}

/// The innermost error's message: `connection refused` rather than reqwest's wrapper text.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    let text = current.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
    .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_normalised() {
        for (given, base) in [
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
            ("127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://q.internal/api/v1/", "http://q.internal"),
        ] {
            assert_eq!(ApiClient::new(given).unwrap().base, base, "{given}");
        }
        assert!(ApiClient::new("https://q").is_err());
        assert!(ApiClient::new("ftp://q").is_err());
    }

    #[test]
    fn problem_bodies_become_detail_and_code() {
        let body = br#"{"title":"Conflict","status":409,"code":"conflict","detail":"feature x:v1 differs"}"#;
        assert_eq!(
            describe_failure(reqwest::StatusCode::CONFLICT, body),
            "feature x:v1 differs (conflict)"
        );
        assert_eq!(
            describe_failure(reqwest::StatusCode::BAD_GATEWAY, b"<html>oops</html>"),
            "the server answered 502 Bad Gateway: <html>oops</html>"
        );
    }
}
