//! Reloads the config when its file, or a secret file it reads through `${file:…}`, changes
//! (`--config.auto-reload-interval`), so a Kubernetes ConfigMap or Secret update takes effect
//! without a restart, a sidecar or a signal.
//!
//! Files are compared by content, not modification time: the kubelet updates a mounted
//! ConfigMap by swapping a symlink to a new directory, which leaves the old file's time alone.
//! A change that does not load keeps the running config (as `SIGHUP` does) and is not retried
//! until the files change again, so a broken file is logged once, not every interval.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::runtime::app::App;

/// A digest of the config file and of every secret file it references, directly or through
/// an environment variable it names: equal digests mean nothing a reload would read changed.
/// An unreadable file digests as its error, so one that disappears and comes back is noticed.
pub fn fingerprint(config: &Path) -> [u8; 32] {
    let mut hash = Sha256::new();
    // Read as a reload would, so a file it refuses (a device, over the size bound) is
    // digested as that refusal, never read whole.
    let text = match crate::config::read_file(config) {
        Ok(text) => text,
        Err(e) => {
            hash.update(e.as_bytes());
            return hash.finalize().into();
        }
    };
    hash.update(text.as_bytes());
    for file in crate::config_core::secret_files(&text) {
        hash.update([0]);
        hash.update(file.as_os_str().as_encoded_bytes());
        // Bounded as the secret reader is: a reference to a device is refused there, and
        // must not be read whole here.
        let mut bytes = Vec::new();
        let read = std::fs::File::open(&file).and_then(|f| {
            std::io::Read::read_to_end(
                &mut std::io::Read::take(f, crate::config_core::interpolate::MAX_SECRET_BYTES + 1),
                &mut bytes,
            )
        });
        match read {
            Ok(_) => hash.update(&bytes),
            Err(e) => hash.update(e.to_string().as_bytes()),
        }
    }
    hash.finalize().into()
}

/// Compares the files every `interval` and reloads `app` when they changed, until the task
/// is aborted.
pub fn spawn(app: Arc<App>, config: PathBuf, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let first = config.clone();
        let Ok(mut seen) = tokio::task::spawn_blocking(move || fingerprint(&first)).await else {
            return;
        };
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let file = config.clone();
            let Ok(now) = tokio::task::spawn_blocking(move || fingerprint(&file)).await else {
                continue;
            };
            if now == seen {
                continue;
            }
            seen = now;
            tracing::info!(event = "config.changed", file = %config.display(), "the config file or a secret it reads changed; reloading");
            // The outcome is logged and exported (pulse_config_last_reload_successful) by
            // the reload itself.
            let _ = app.reload().await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_of_the_file_or_of_a_secret_it_reads_changes_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("pg-password");
        let via_env = dir.path().join("redis-password");
        let config = dir.path().join("config.yml");
        std::fs::write(&secret, "one").unwrap();
        std::fs::write(&via_env, "one").unwrap();
        std::env::set_var(
            "PULSE_TEST_CONFIGWATCH_URL",
            format!("redis://:${{file:{}}}@cache", via_env.display()),
        );
        std::fs::write(
            &config,
            format!(
                "url: postgres://app:${{file:{}}}@db\nredis: ${{env:PULSE_TEST_CONFIGWATCH_URL}}\n",
                secret.display()
            ),
        )
        .unwrap();

        let a = fingerprint(&config);
        assert_eq!(fingerprint(&config), a, "nothing changed");
        std::fs::write(&secret, "two").unwrap();
        let b = fingerprint(&config);
        assert_ne!(a, b, "a secret the config reads changed");
        std::fs::write(&via_env, "two").unwrap();
        let c = fingerprint(&config);
        assert_ne!(b, c, "a secret named by an environment variable changed");
        std::fs::remove_file(&secret).unwrap();
        let d = fingerprint(&config);
        assert_ne!(c, d, "a secret that disappears");
        std::fs::write(&secret, "two").unwrap();
        assert_eq!(fingerprint(&config), c, "and comes back");
        std::fs::write(&config, "sources: []\n").unwrap();
        assert_ne!(fingerprint(&config), c, "the file itself changed");
        std::env::remove_var("PULSE_TEST_CONFIGWATCH_URL");
    }

    #[test]
    fn a_kubernetes_style_symlink_swap_is_noticed() {
        // The kubelet's layout: config.yml -> ..data/config.yml, ..data -> ..<timestamp>/,
        // and an update points ..data at a new directory.
        let dir = tempfile::tempdir().unwrap();
        let v1 = dir.path().join("..2026_11_23_1");
        let v2 = dir.path().join("..2026_11_23_2");
        std::fs::create_dir(&v1).unwrap();
        std::fs::create_dir(&v2).unwrap();
        std::fs::write(v1.join("config.yml"), "sources: []\n").unwrap();
        std::fs::write(v2.join("config.yml"), "sources: [] # v2\n").unwrap();
        let data = dir.path().join("..data");
        std::os::unix::fs::symlink(&v1, &data).unwrap();
        let config = dir.path().join("config.yml");
        std::os::unix::fs::symlink("..data/config.yml", &config).unwrap();
        let before = fingerprint(&config);
        let tmp = dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&v2, &tmp).unwrap();
        std::fs::rename(&tmp, &data).unwrap();
        assert_ne!(fingerprint(&config), before);
    }
}
