//! The coordinator's address and the proxy's own credentials, from `postgres://[user[:pw]@]host[:port][/db][?sslmode=..]`.

/// A parsed upstream URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    pub database: Option<String>,
    /// `sslmode` given in the URL's query, which wins over `upstream.sslmode`.
    pub sslmode: Option<String>,
}

impl UpstreamUrl {
    pub fn parse(s: &str) -> Result<UpstreamUrl, String> {
        let url = url::Url::parse(s).map_err(|e| format!("not a URL ({e}): {s:?}"))?;
        if url.scheme() != "postgres" && url.scheme() != "postgresql" {
            return Err(format!("expected a postgres:// URL, got scheme {:?}", url.scheme()));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("URL {s:?} names no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let decode = |v: &str| percent_decode(v);
        let mut sslmode = None;
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "sslmode" => sslmode = Some(v.into_owned()),
                other => return Err(format!("unsupported URL parameter {other:?} (use the configuration keys)")),
            }
        }
        Ok(UpstreamUrl {
            host,
            port: url.port().unwrap_or(5432),
            user: Some(url.username()).filter(|u| !u.is_empty()).map(decode),
            password: url.password().map(decode),
            database: Some(url.path().trim_start_matches('/')).filter(|d| !d.is_empty()).map(decode),
            sslmode,
        })
    }

    /// `host:port`, for messages and connecting.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_people_write() {
        let u = UpstreamUrl::parse("postgres://coord:6000").expect("valid");
        assert_eq!((u.host.as_str(), u.port, u.user.clone()), ("coord", 6000, None));
        let u = UpstreamUrl::parse("postgresql://meta:p%40ss@10.0.0.1/citus?sslmode=require").expect("valid");
        assert_eq!(u.addr(), "10.0.0.1:5432");
        assert_eq!(u.password.as_deref(), Some("p@ss"));
        assert_eq!(u.database.as_deref(), Some("citus"));
        assert_eq!(u.sslmode.as_deref(), Some("require"));
        assert!(UpstreamUrl::parse("mysql://x").is_err());
        assert!(UpstreamUrl::parse("postgres://x?foo=1").is_err());
        assert!(UpstreamUrl::parse("not a url").is_err());
    }
}
