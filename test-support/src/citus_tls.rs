//! TLS exactly as Citus sets it up on every node (facts.md §11): `ssl = on`, an ECDHE-only cipher
//! list, and a self-signed X.509 v1 certificate for `CN = citus-auto-ssl` whose validity ends the
//! moment it begins, made with the same `openssl` commands.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `ssl_ciphers` Citus writes into `postgresql.auto.conf`.
pub const CITUS_SSL_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:\
ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-SHA256:\
ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384";

/// A certificate and key as Citus makes them.
#[derive(Debug, Clone)]
pub struct CitusAutoCert {
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
}

impl CitusAutoCert {
    /// Writes `server.crt` and `server.key` (mode 0600) into `dir`, where Citus puts them: the
    /// data directory.
    pub fn generate(dir: &Path) -> CitusAutoCert {
        let out = CitusAutoCert { cert_pem: dir.join("server.crt"), key_pem: dir.join("server.key") };
        let csr = dir.join("server.csr");
        openssl(&[&"genrsa", &"-out", &out.key_pem.as_path(), &"2048"]);
        openssl(&[&"req", &"-new", &"-key", &out.key_pem.as_path(), &"-subj", &"/CN=citus-auto-ssl", &"-out", &csr.as_path()]);
        openssl(&[
            &"x509",
            &"-req",
            &"-in",
            &csr.as_path(),
            &"-signkey",
            &out.key_pem.as_path(),
            &"-days",
            &"0",
            &"-out",
            &out.cert_pem.as_path(),
        ]);
        let _ = std::fs::remove_file(&csr);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&out.key_pem, std::fs::Permissions::from_mode(0o600))
            .unwrap_or_else(|e| panic!("test harness: chmod 0600 {}: {e}", out.key_pem.display()));
        out
    }
}

fn openssl(args: &[&dyn AsRef<std::ffi::OsStr>]) {
    let out = Command::new("openssl").args(args.iter().map(|a| a.as_ref())).output().unwrap_or_else(|e| {
        panic!("test harness: the openssl CLI makes the Citus-like certificate and is missing ({e}): apt-get install -y openssl")
    });
    if !out.status.success() {
        panic!("test harness: openssl failed: {}", String::from_utf8_lossy(&out.stderr));
    }
}
