//! Whether a Redis or Postgres URL is one its client can use: checked when the config loads,
//! alike for a source and for the job store, so that `check` refuses what the exporter would
//! refuse at start. The messages say what a usable URL looks like; secrets are scrubbed.

/// How a Redis URL speaks TLS: the fix a `tls:` field beside a plain `redis://` URL is told.
pub const REDIS_TLS_FIX: &str = "use a rediss:// URL";

/// Why a URL of `kind` cannot be used by a build without that kind's client.
pub fn not_built(kind: &str) -> String {
    format!(
        "this build of pulse-exporter has no {kind} client: build it with `--features {kind}`, \
         or with the default features"
    )
}

/// Why `url` is no Redis URL the client can use, if it is not.
#[cfg(not(feature = "redis"))]
pub fn redis(_url: &str) -> Result<(), String> {
    Err(not_built("redis"))
}

/// Why `url` is no Redis URL the client can use, if it is not.
#[cfg(feature = "redis")]
pub fn redis(url: &str) -> Result<(), String> {
    if url.contains("#insecure") {
        return Err(
            "`#insecure` (no certificate check) is not supported: give the server's CA in `tls.ca_file` instead"
                .to_owned(),
        );
    }
    redis::Client::open(url).map(drop).map_err(|e| {
        format!(
            "not a usable Redis URL ({}); expected redis://[:password@]host:6379[/db]",
            crate::secrets::scrub(&e.to_string())
        )
    })
}

/// Why `url` is no Postgres URL the client can use, if it is not.
#[cfg(not(feature = "postgres"))]
pub fn postgres(_url: &str) -> Result<(), String> {
    Err(not_built("postgres"))
}

/// Why `url` is no Postgres URL the client can use, if it is not.
#[cfg(feature = "postgres")]
pub fn postgres(url: &str) -> Result<(), String> {
    use std::str::FromStr;
    // The driver parses any scheme; another database's URL would only fail at connect time.
    let scheme_ok = ["postgres://", "postgresql://"].iter().any(|s| {
        url.get(..s.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(s))
    });
    let parsed = match scheme_ok {
        true => sqlx::postgres::PgConnectOptions::from_str(url)
            .map(drop)
            .map_err(|e| e.to_string()),
        false => Err("the scheme is not postgres:// or postgresql://".to_owned()),
    };
    parsed.map_err(|e| {
        format!(
            "not a usable Postgres URL ({}); expected postgres://user:password@host:5432/database",
            crate::secrets::scrub(&e)
        )
    })
}

#[cfg(all(test, feature = "redis", feature = "postgres"))]
mod tests {
    use super::*;

    #[test]
    fn urls_the_clients_refuse_are_told_with_the_expected_form() {
        assert!(redis("redis://127.0.0.1:6379/0").is_ok());
        assert!(redis("rediss://cache:6380").is_ok());
        let e = redis("redis://h:99999999").unwrap_err();
        assert!(e.contains("expected redis://"), "{e}");
        assert!(redis("rediss://h#insecure")
            .unwrap_err()
            .contains("tls.ca_file"));
        assert!(postgres("postgres://u:p@h:5432/db?sslmode=require").is_ok());
        assert!(postgres("POSTGRESQL://h/db").is_ok());
        let e = postgres("mysql://u:p@h/db").unwrap_err();
        assert!(
            e.contains("scheme") && e.contains("expected postgres://"),
            "{e}"
        );
        assert!(postgres("postgres://h/db?sslmode=sometimes").is_err());
    }
}
