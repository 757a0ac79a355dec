//! Re-reads the web config while serving: when the file, or the certificate or key it names,
//! changes, the new users and certificate take effect without a restart (as exporter-toolkit
//! does). A new file that does not load keeps the old one in force and says why, once per
//! broken version.

use crate::sync::RwLockExt;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::serve::webconfig::{BasicAuth, WebConfig};

/// How often the files are compared with what is in force. Reading three small files every
/// few seconds costs nothing next to a scrape, and a Kubernetes Secret update (an atomic
/// symlink swap) is noticed by content, not by modification time.
pub const POLL: Duration = Duration::from_secs(2);

/// The basic-auth users in force, swapped whole when the web config changes.
pub type LiveAuth = Arc<RwLock<Option<Arc<BasicAuth>>>>;

/// A digest of the web config file and the certificate and key it names: equal digests mean
/// nothing changed. Unreadable files digest as their error, so a file that disappears and
/// comes back is noticed both times.
pub fn fingerprint(file: &Path, web: Option<&WebConfig>) -> [u8; 32] {
    let mut hash = Sha256::new();
    let mut add = |path: &Path| {
        match std::fs::read(path) {
            Ok(bytes) => hash.update(&bytes),
            Err(e) => hash.update(e.to_string().as_bytes()),
        }
        hash.update([0]);
    };
    add(file);
    if let Some(tls) = web.and_then(|w| w.tls_server_config.as_ref()) {
        add(Path::new(&tls.cert_file));
        add(Path::new(&tls.key_file));
    }
    hash.finalize().into()
}

/// What the watcher swaps when the files change.
pub struct Targets {
    /// The users checked on every request.
    pub auth: LiveAuth,
    /// The certificate served on new connections; `None` when serving plain HTTP.
    pub tls: Option<axum_server::tls_rustls::RustlsConfig>,
    /// Where the certificate's expiry is published.
    pub store: Arc<crate::runtime::results::Results>,
}

/// Watches `web.file` every [`POLL`] until the task is dropped with the server.
pub fn spawn(web: &WebConfig, targets: Targets) -> Option<tokio::task::JoinHandle<()>> {
    let file = web.file.clone()?;
    let mut seen = fingerprint(&file, Some(web));
    let tls_on = web.tls_server_config.is_some();
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // The new file may name other certificate files: digest with what it names.
            let file2 = file.clone();
            let Ok((now, loaded)) = tokio::task::spawn_blocking(move || {
                let loaded = WebConfig::load(&file2);
                (fingerprint(&file2, loaded.as_ref().ok()), loaded)
            })
            .await
            else {
                continue;
            };
            if now == seen {
                continue;
            }
            seen = now;
            apply(&file, tls_on, loaded, &targets);
        }
    }))
}

/// Puts a re-read web config in force, or keeps the old one and logs why.
fn apply(file: &Path, tls_on: bool, loaded: Result<WebConfig, String>, targets: &Targets) {
    let web = match loaded {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(file = %file.display(), error = %e, "the changed web config is invalid; the previous one stays in force");
            return;
        }
    };
    if web.tls_server_config.is_some() != tls_on {
        tracing::error!(file = %file.display(), "the changed web config turns TLS on or off, which needs a restart; the previous one stays in force");
        return;
    }
    if let (Some(tls), Some(live)) = (&web.tls_server_config, &targets.tls) {
        match tls.server_config() {
            Ok(config) => {
                live.reload_from_config(Arc::new(config));
                targets.store.set_web_certificate(tls.certificate_expiry());
            }
            // Validated by load a moment ago; the files changed again in between.
            Err(e) => {
                tracing::error!(file = %file.display(), error = %e, "the changed certificate does not load; the previous one stays in force");
                return;
            }
        }
    }
    let auth = BasicAuth::new(&web.basic_auth_users).map(Arc::new);
    *targets.auth.write_locked() = auth;
    tracing::info!(file = %file.display(), tls = tls_on, users = web.basic_auth_users.len(), "web config re-read");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_or_vanished_file_changes_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("web.yml");
        std::fs::write(&file, "basic_auth_users: {}\n").unwrap();
        let first = fingerprint(&file, None);
        assert_eq!(first, fingerprint(&file, None), "same content, same digest");
        std::fs::write(&file, "basic_auth_users: { a: b }\n").unwrap();
        let second = fingerprint(&file, None);
        assert_ne!(first, second);
        std::fs::remove_file(&file).unwrap();
        assert_ne!(second, fingerprint(&file, None));
    }

    #[test]
    fn a_broken_file_keeps_the_users_in_force() {
        let users =
            std::collections::BTreeMap::from([("prom".to_owned(), bcrypt::hash("pw", 4).unwrap())]);
        let targets = Targets {
            auth: Arc::new(RwLock::new(BasicAuth::new(&users).map(Arc::new))),
            tls: None,
            store: Arc::default(),
        };
        apply(
            Path::new("web.yml"),
            false,
            Err("basic_auth_users.prom: not a bcrypt hash".to_owned()),
            &targets,
        );
        let kept = targets.auth.read().unwrap().clone().expect("still guarded");
        assert!(kept.check("prom", "pw"));
        apply(
            Path::new("web.yml"),
            false,
            Ok(WebConfig::default()),
            &targets,
        );
        assert!(targets.auth.read().unwrap().is_none(), "no users: open");
    }
}
