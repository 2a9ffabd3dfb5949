//! Reads a proxy's `GET /slo` (docs/metrics.md) after the run, so the report can put the proxy's
//! own view next to the load tester's. One GET per run does not justify an HTTP client crate:
//! this is a plain HTTP/1.0 request over a tokio TcpStream (no keep-alive, body ends at EOF).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SloResponse {
    pub percentile: f64,
    #[serde(default)]
    pub window_seconds: Option<f64>,
    #[serde(default)]
    pub classes: Vec<SloClass>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SloClass {
    pub class: String,
    #[serde(default)]
    pub target_seconds: Option<f64>,
    #[serde(default)]
    pub observed_seconds: Option<f64>,
    #[serde(default)]
    pub count: u64,
    #[serde(default)]
    pub violations: u64,
    #[serde(default = "yes")]
    pub pass: bool,
}

fn yes() -> bool {
    true
}

/// The proxy's view for one target; `error` says why it is missing (the run is still judged).
#[derive(Clone, Debug, Serialize)]
pub struct SloView {
    pub target: String,
    pub url: String,
    pub response: Option<SloResponse>,
    pub error: Option<String>,
}

pub async fn read(target: &str, url: &str) -> SloView {
    let (response, error) = match tokio::time::timeout(Duration::from_secs(10), get(url)).await {
        Ok(Ok(body)) => match serde_json::from_slice::<SloResponse>(&body) {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(format!("not the /slo JSON: {e}"))),
        },
        Ok(Err(e)) => (None, Some(e)),
        Err(_) => (None, Some("no answer within 10 s".into())),
    };
    SloView { target: target.to_string(), url: url.to_string(), response, error }
}

/// `http://host:port/path` → (host:port, host, path).
fn split_url(url: &str) -> Result<(String, String, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url}: only http:// is supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/slo"),
    };
    if authority.is_empty() {
        return Err(format!("{url}: no host"));
    }
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h).to_string();
    let addr = if authority.contains(':') { authority.to_string() } else { format!("{authority}:80") };
    Ok((addr, host, path.to_string()))
}

async fn get(url: &str) -> Result<Vec<u8>, String> {
    let (addr, host, path) = split_url(url)?;
    let mut stream = TcpStream::connect(&addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nAccept: application/json\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.map_err(|e| format!("send to {addr}: {e}"))?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.map_err(|e| format!("read from {addr}: {e}"))?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<Vec<u8>, String> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("malformed HTTP response (no header end)")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let status_line = head.lines().next().unwrap_or_default();
    let status = status_line.split_whitespace().nth(1).unwrap_or_default();
    if status != "200" {
        return Err(format!("HTTP status `{status_line}`"));
    }
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    // HTTP/1.0 answers should not be chunked, but a server may do it anyway.
    if chunked {
        dechunk(body)
    } else {
        Ok(body.to_vec())
    }
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = body.windows(2).position(|w| w == b"\r\n").ok_or("bad chunked body")?;
        let size_text = String::from_utf8_lossy(&body[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size `{size_text}`"))?;
        body = &body[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size {
            return Err("truncated chunked body".into());
        }
        out.extend_from_slice(&body[..size]);
        body = body.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls_and_responses() {
        assert_eq!(split_url("http://127.0.0.1:9930/slo").unwrap(), ("127.0.0.1:9930".into(), "127.0.0.1".into(), "/slo".into()));
        assert!(split_url("https://x/slo").is_err());
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\":1}";
        assert_eq!(parse_response(ok).unwrap(), b"{\"a\":1}");
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), b"{\"a\":1}");
        assert!(parse_response(b"HTTP/1.1 503 Service Unavailable\r\n\r\n").is_err());
        let json = r#"{"percentile": 0.99, "window_seconds": 60, "classes": [{"class": "count",
            "target_seconds": 1.0, "observed_seconds": null, "count": 0, "violations": 0, "pass": true}]}"#;
        let r: SloResponse = serde_json::from_str(json).unwrap();
        assert_eq!(r.classes[0].observed_seconds, None);
    }
}
