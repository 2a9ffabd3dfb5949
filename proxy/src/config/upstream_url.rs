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

    /// The role of the proxy's own (metadata) connection: the URL's, else the operating-system
    /// user the process runs as, as libpq does.
    pub fn effective_user(&self) -> String {
        self.user.clone().or_else(os_user).unwrap_or_else(|| "postgres".into())
    }

    /// The database of the proxy's own connection: the URL's, else the user's name (libpq's rule).
    pub fn effective_database(&self) -> String {
        self.database.clone().unwrap_or_else(|| self.effective_user())
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

/// The name of the effective user, as libpq finds it (getpwuid(geteuid())): the owner of
/// /proc/self looked up in /etc/passwd, then `$USER`.
pub fn os_user() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let from_passwd = std::fs::metadata("/proc/self").ok().and_then(|m| {
        let uid = m.uid().to_string();
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|line| {
            let mut f = line.split(':');
            let name = f.next()?;
            (f.nth(1)? == uid).then(|| name.to_string())
        })
    });
    from_passwd.or_else(|| std::env::var("USER").ok()).filter(|u| !u.is_empty())
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_else(|| s.to_string())
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
        let u = UpstreamUrl::parse("postgres://127.0.0.1:5432").expect("valid");
        let me = os_user().expect("the test runs as a user listed in /etc/passwd");
        assert_eq!((u.effective_user(), u.effective_database()), (me.clone(), me));
    }
}
