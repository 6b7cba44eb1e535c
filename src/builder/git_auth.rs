//! Credentials and trust for git: basic-auth and SSH keys from the source secret, known_hosts
//! checking of SSH host keys, an extra CA for https, and proxy selection.

use std::path::Path;

use git2::{CertificateCheckStatus, Cred, CredentialType, RemoteCallbacks};

/// Credentials and trust for a clone, read from the source secret's files.
#[derive(Clone, Debug, Default)]
pub struct SourceAuth {
    /// Basic-auth user name.
    pub(crate) username: Option<String>,
    /// Basic-auth password or token.
    pub(crate) password: Option<String>,
    /// An SSH private key (PEM/OpenSSH text).
    pub(crate) ssh_private_key: Option<String>,
    /// known_hosts lines the SSH host key must match.
    pub(crate) known_hosts: Option<String>,
    /// Accept unknown SSH host keys (only when the secret says so explicitly).
    pub(crate) insecure_ignore_host_key: bool,
}

impl SourceAuth {
    /// Reads `username`, `password`, `ssh-privatekey`, `known_hosts` and `insecure-ignore-host-key`
    /// from a mounted secret directory; absent files are absent fields.
    pub fn from_dir(dir: &Path) -> Self {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .ok()
                .filter(|s| !s.is_empty())
        };
        Self {
            username: read("username").map(|s| s.trim().to_string()),
            password: read("password")
                .or_else(|| read("token"))
                .map(|s| s.trim_end().to_string()),
            ssh_private_key: read("ssh-privatekey"),
            known_hosts: read("known_hosts"),
            insecure_ignore_host_key: read("insecure-ignore-host-key")
                .is_some_and(|s| s.trim() == "true"),
        }
    }
}

/// Whether the source secret's credentials may go to the server at `asking` (the URL libgit2
/// authenticates against): only when its host is `own`, the host of the repository the secret
/// was given for.
pub(crate) fn credentials_allowed(own: Option<&str>, asking: &str) -> bool {
    own.is_some_and(|own| super::url_policy::host(asking).as_deref() == Some(own))
}

/// libgit2 callbacks: credentials from the secret, offered only to `own_host` (the repository's
/// host); SSH host keys checked against known_hosts.
pub(crate) fn callbacks(auth: &SourceAuth, own_host: Option<&str>) -> RemoteCallbacks<'static> {
    let mut cb = RemoteCallbacks::new();
    let creds = auth.clone();
    let own_host = own_host.map(str::to_string);
    let mut attempts = 0;
    cb.credentials(move |url, user_from_url, allowed| {
        if !credentials_allowed(own_host.as_deref(), url) {
            let asking = super::url_policy::host(url).unwrap_or_else(|| "a local path".into());
            return Err(git2::Error::from_str(&format!(
                "{asking} asks for credentials; the source secret's are sent only to {}",
                own_host.as_deref().unwrap_or("the repository's own host")
            )));
        }
        attempts += 1;
        if attempts > 3 {
            return Err(git2::Error::from_str(
                "authentication failed: the source secret's credentials were rejected",
            ));
        }
        if allowed.contains(CredentialType::SSH_KEY) {
            if let Some(key) = &creds.ssh_private_key {
                return Cred::ssh_key_from_memory(user_from_url.unwrap_or("git"), None, key, None);
            }
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            if let Some(password) = &creds.password {
                let user = creds.username.as_deref().or(user_from_url).unwrap_or("git");
                return Cred::userpass_plaintext(user, password);
            }
        }
        if allowed.contains(CredentialType::USERNAME) {
            return Cred::username(user_from_url.unwrap_or("git"));
        }
        Err(git2::Error::from_str(
            "the repository needs credentials: add a source secret (basic-auth or ssh-privatekey)",
        ))
    });
    let known_hosts = auth.known_hosts.clone();
    let insecure = auth.insecure_ignore_host_key;
    cb.certificate_check(move |cert, host| {
        let Some(hostkey) = cert.as_hostkey().and_then(|h| h.hostkey()) else {
            return Ok(CertificateCheckStatus::CertificatePassthrough);
        };
        if insecure {
            return Ok(CertificateCheckStatus::CertificateOk);
        }
        let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, hostkey);
        if known_hosts
            .as_deref()
            .is_some_and(|k| known_host_matches(k, host, &encoded))
        {
            Ok(CertificateCheckStatus::CertificateOk)
        } else {
            Err(git2::Error::from_str(&format!(
                "unknown SSH host key for {host}: add it to the source secret's known_hosts"
            )))
        }
    });
    cb
}

/// Whether a known_hosts text lists `host` (or `[host]:port`) with this base64 key.
pub(crate) fn known_host_matches(known_hosts: &str, host: &str, key_b64: &str) -> bool {
    known_hosts
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .any(|line| {
            let mut fields = line.split_whitespace();
            let hosts = fields.next().unwrap_or("");
            let _key_type = fields.next();
            let key = fields.next().unwrap_or("");
            key == key_b64
                && hosts.split(',').any(|h| {
                    h == host
                        || h.strip_prefix('[')
                            .and_then(|r| r.split_once("]:"))
                            .is_some_and(|(n, _)| n == host)
                })
        })
}

/// System CA bundles, the first present one is extended with the source secret's `ca.crt`.
const SYSTEM_BUNDLES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// Trusts `ca` for https clones: writes the system bundle plus `ca` to `bundle` and points
/// `SSL_CERT_FILE` at it (read by libgit2's OpenSSL when it first initializes, so call this before
/// any clone, while the process is single-threaded).
pub(crate) fn trust_ca(ca: &Path, bundle: &Path) -> std::io::Result<()> {
    let mut text = SYSTEM_BUNDLES
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&std::fs::read_to_string(ca)?);
    std::fs::write(bundle, text)?;
    std::env::set_var("SSL_CERT_FILE", bundle);
    Ok(())
}

/// Picks the proxy for `url` from OpenShift's `httpProxy`/`httpsProxy`/`noProxy`.
pub(crate) fn choose_proxy(
    url: &str,
    http: Option<&str>,
    https: Option<&str>,
    no_proxy: Option<&str>,
) -> Option<String> {
    let lower = url.to_ascii_lowercase();
    let proxy = if lower.starts_with("https://") {
        https
    } else if lower.starts_with("http://") {
        http
    } else {
        None
    }?;
    let host = lower
        .split("://")
        .nth(1)?
        .split('/')
        .next()?
        .rsplit('@')
        .next()?
        .split(':')
        .next()?
        .to_string();
    let bypass = no_proxy
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .any(|entry| {
            entry == "*"
                || host == entry.trim_start_matches('.')
                || host.ends_with(&format!(".{}", entry.trim_start_matches('.')))
        });
    (!bypass && !proxy.is_empty()).then(|| proxy.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hosts_table() {
        let kh = "# c\nexample.com,10.0.0.1 ssh-ed25519 AAAA\n[git.local]:2222 ssh-rsa BBBB\n";
        for (host, key, want) in [
            ("example.com", "AAAA", true),
            ("10.0.0.1", "AAAA", true),
            ("example.com", "BBBB", false),
            ("git.local", "BBBB", true),
            ("other", "AAAA", false),
        ] {
            assert_eq!(known_host_matches(kh, host, key), want, "{host} {key}");
        }
    }

    #[test]
    fn credentials_go_only_to_the_repositorys_host() {
        for (own, asking, want) in [
            (Some("git.corp"), "https://git.corp/o/r.git", true),
            (Some("git.corp"), "https://user@GIT.corp:8443/o/r.git", true),
            (Some("git.corp"), "ssh://git@git.corp/o/r.git", true),
            (Some("git.corp"), "git@git.corp:o/r.git", true),
            (Some("git.corp"), "https://evil.example/o/r.git", false),
            (
                Some("git.corp"),
                "https://git.corp.evil.example/r.git",
                false,
            ),
            (Some("127.0.0.1"), "http://localhost/r.git", false),
            (None, "https://git.corp/o/r.git", false),
            (Some("git.corp"), "/srv/r.git", false),
        ] {
            assert_eq!(credentials_allowed(own, asking), want, "{own:?} {asking}");
        }
    }

    #[test]
    fn proxy_table() {
        let h = Some("http://p:3128");
        let s = Some("http://sp:3128");
        for (url, no, want) in [
            ("https://github.com/o/r", None, Some("http://sp:3128")),
            ("http://git.corp/r", None, Some("http://p:3128")),
            ("http://git.corp/r", Some("corp"), None),
            ("http://git.corpx/r", Some("corp"), Some("http://p:3128")),
            ("http://git.corp/r", Some(".corp"), None),
            ("https://user@git.corp:8443/r", Some("git.corp"), None),
            ("ssh://git.corp/r", None, None),
            ("https://x/r", Some("*"), None),
        ] {
            assert_eq!(choose_proxy(url, h, s, no).as_deref(), want, "{url} {no:?}");
        }
    }
}
