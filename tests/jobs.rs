//! Jobs that report in, against the real Redis and Postgres: pings survive a restart and are
//! published alike by a second replica; a job that never pinged is late at its first
//! deadline; overlapping runs and retried pings; refusals that say what to fix; and the
//! `run` wrapper reporting a failing command end to end.

use pulse_test_support as common;

use std::time::Duration;

use common::*;

const TOKEN: &str = "rollup-token-0123456789";

/// A config of two jobs kept in `store`: `rollup` (hourly, signed by its token) and `never`
/// (due every 2s with 1s of grace, and never pinged).
fn config(store: &str) -> String {
    format!(
        r#"
sources: []
job_store:
{store}
  refresh: 1s
jobs:
  - name: rollup
    every: 1h
    grace: 1m
    max_runtime: 30m
    token: {TOKEN}
    labels: {{ team: data }}
  - name: never
    every: 2s
    grace: 1s
    token: never-token-0123456789
"#
    )
}

/// Sends a ping and returns (status, body, Retry-After).
async fn ping(
    e: &Exporter,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (u16, String, Option<String>) {
    let mut req = reqwest::Client::new().post(e.url(path)).body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, resp.text().await.unwrap(), retry)
}

fn job(m: &Scrape, metric: &str, name: &str) -> Option<f64> {
    m.get(metric, &[("job_name", name)])
}

/// What a replica publishes of both jobs, to compare replicas.
fn published(m: &Scrape) -> Vec<Option<f64>> {
    [
        "pulse_job_last_success_timestamp_seconds",
        "pulse_job_last_start_timestamp_seconds",
        "pulse_job_deadline_timestamp_seconds",
        "pulse_job_running",
    ]
    .iter()
    .flat_map(|metric| [job(m, metric, "rollup"), job(m, metric, "never")])
    .chain([
        m.get(
            "pulse_job_runs_total",
            &[("job_name", "rollup"), ("outcome", "success")],
        ),
        m.get(
            "pulse_job_runs_total",
            &[("job_name", "rollup"), ("outcome", "failure")],
        ),
    ])
    .collect()
}

async fn survives_restarts_and_replicas(store: &str, store_label: &str) {
    let first = Exporter::start(&config(store));
    let m = first
        .wait_for(
            "the declared jobs read from the store",
            Duration::from_secs(10),
            |m| job(m, "pulse_job_deadline_timestamp_seconds", "never").is_some(),
        )
        .await;
    assert_eq!(
        m.get("pulse_job_store_up", &[("store", store_label)]),
        Some(1.0)
    );
    assert_eq!(
        m.get(
            "pulse_job_info",
            &[
                ("job_name", "rollup"),
                ("schedule", "every 1h"),
                ("team", "data")
            ]
        ),
        Some(1.0),
        "{}",
        m.text
    );
    // Two overlapping runs, told apart by their run ids; the second finishes first.
    for path in ["/ping/rollup/start?rid=r1", "/ping/rollup/start?rid=r2"] {
        assert_eq!(ping(&first, path, Some(TOKEN), vec![]).await.0, 200);
    }
    let before = now_secs() as f64;
    let (status, body, _) = ping(
        &first,
        "/ping/rollup/success?rid=r2",
        Some(TOKEN),
        b"done\n".to_vec(),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "OK\n"));
    // A client retrying the same end ping (its answer was lost) is not counted twice.
    let (status, body, _) = ping(&first, "/ping/rollup/success?rid=r2", Some(TOKEN), vec![]).await;
    assert_eq!(status, 200);
    assert!(body.contains("already recorded"), "{body}");
    let m = first.metrics().await;
    assert_eq!(
        m.get(
            "pulse_job_runs_total",
            &[("job_name", "rollup"), ("outcome", "success")]
        ),
        Some(1.0)
    );
    assert_eq!(
        job(&m, "pulse_job_running", "rollup"),
        Some(1.0),
        "r1 is still in flight"
    );
    let success = job(&m, "pulse_job_last_success_timestamp_seconds", "rollup").unwrap();
    assert!(
        success >= before - 1.0,
        "the server's receive time: {success} vs {before}"
    );
    assert_eq!(
        job(&m, "pulse_job_deadline_timestamp_seconds", "rollup"),
        Some(success + 3600.0 + 60.0)
    );
    // The job never pinged is due 2s after it was first seen, late 1s later: its deadline
    // passes while we watch, and it stays published.
    let never_deadline = job(&m, "pulse_job_deadline_timestamp_seconds", "never").unwrap();
    // first_seen is at most now: its deadline at most 3s from now (to the fraction of a second).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(never_deadline <= now + 3.0, "{never_deadline} vs {now}");

    // A second replica on the same store publishes the same state.
    let second = Exporter::start(&config(store));
    let want = published(&m);
    second
        .wait_for(
            "the second replica to read the pings",
            Duration::from_secs(10),
            |m2| published(m2) == want,
        )
        .await;
    // A ping the second replica takes reaches the first through the store.
    assert_eq!(
        ping(
            &second,
            "/ping/rollup/fail?rid=r1&exit_code=4",
            Some(TOKEN),
            vec![]
        )
        .await
        .0,
        200
    );
    let m = first
        .wait_for(
            "the first replica to read the failure",
            Duration::from_secs(10),
            |m| job(m, "pulse_job_failing", "rollup") == Some(1.0),
        )
        .await;
    assert_eq!(job(&m, "pulse_job_last_exit_code", "rollup"), Some(4.0));
    assert_eq!(job(&m, "pulse_job_running", "rollup"), Some(0.0));

    // Both restart: nothing is lost, and the never-pinged job keeps its first deadline
    // (a restart does not reset the clock of a job that never came).
    let want = published(&m);
    drop(first);
    drop(second);
    let again = Exporter::start(&config(store));
    let m = again
        .wait_for(
            "the restarted exporter to read the store",
            Duration::from_secs(10),
            |m| published(m) == want,
        )
        .await;
    assert!(
        now_secs() as f64 > job(&m, "pulse_job_deadline_timestamp_seconds", "never").unwrap() - 5.0
    );
}

#[tokio::test]
async fn pings_kept_in_redis_survive_a_restart_and_are_published_by_a_second_replica() {
    let prefix = unique("pulse_jobs");
    let _cleanup = Cleanup::default().redis_keys(format!("{prefix}:*"));
    let store = format!("  redis: {REDIS_URL}\n  prefix: \"{prefix}:\"");
    survives_restarts_and_replicas(&store, "redis").await;
}

#[tokio::test]
async fn pings_kept_in_postgres_survive_a_restart_and_are_published_by_a_second_replica() {
    let table = unique("pulse_jobs").to_lowercase();
    let _cleanup = Cleanup::default().pg(format!("DROP TABLE IF EXISTS {table}"));
    let store = format!("  postgres: {PG_URL}\n  table: {table}");
    survives_restarts_and_replicas(&store, "postgres").await;
}

#[tokio::test]
async fn bad_pings_are_refused_with_what_to_fix() {
    let e = Exporter::start(
        r#"
sources: []
jobs:
  - name: rollup
    every: 1h
    token: rollup-token-0123456789
  - name: unsigned
    every: 1h
"#,
    );
    assert!(e.logs().contains("event=jobs.memory_store"), "{}", e.logs());
    let (status, body, _) = ping(
        &e,
        "/ping/rollup/start",
        Some("wrong-token-0123456789"),
        vec![],
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        body.contains("does not match job \"rollup\"'s `token`"),
        "a wrong token is no missing one: {body}"
    );
    let (status, body, _) = ping(&e, "/ping/rollup/start", None, vec![]).await;
    assert_eq!(status, 401);
    assert!(body.contains("must carry its token"), "{body}");
    let (status, body, _) = ping(&e, "/ping/unsigned", None, vec![]).await;
    assert_eq!(status, 403);
    assert!(body.contains("basic_auth_users"), "{body}");
    let (status, body, _) = ping(&e, "/ping/nightly/start", Some(TOKEN), vec![]).await;
    assert_eq!(status, 404);
    assert!(body.contains("declare it under `jobs:`"), "{body}");
    let (status, body, _) = ping(&e, "/ping/rollup/stop", Some(TOKEN), vec![]).await;
    assert_eq!(status, 404);
    assert!(
        body.contains("/start, /success, /fail or an exit code"),
        "{body}"
    );
    let (status, body, _) = ping(&e, "/ping/rollup/fail?exit_code=x", Some(TOKEN), vec![]).await;
    assert_eq!(status, 400);
    assert!(body.contains("not a whole number"), "{body}");
    let (status, body, _) = ping(&e, "/ping/rollup/start?rid=a%20b", Some(TOKEN), vec![]).await;
    assert_eq!(status, 400);
    assert!(body.contains("rid"), "{body}");
    let (status, body, _) =
        ping(&e, "/ping/rollup/fail", Some(TOKEN), vec![b'x'; 200 * 1024]).await;
    assert_eq!(status, 413);
    assert!(body.contains("tail of the log"), "{body}");
    // Nothing refused was recorded; a flood is cut off with Retry-After.
    let m = e.metrics().await;
    assert_eq!(
        job(&m, "pulse_job_last_start_timestamp_seconds", "rollup"),
        None
    );
    let mut limited = None;
    for _ in 0..80 {
        let r = ping(&e, "/ping/rollup/start", Some(TOKEN), vec![]).await;
        if r.0 != 200 {
            limited = Some(r);
            break;
        }
    }
    let (status, body, retry) = limited.expect("the flood is limited");
    assert_eq!((status, retry.as_deref()), (429, Some("1")), "{body}");
    // Tokens never reach the logs.
    assert!(!e.logs().contains("rollup-token-0123456789"));
}

#[tokio::test]
async fn a_store_that_is_down_refuses_pings_with_503_so_clients_retry() {
    let dead = closed_port();
    let e = Exporter::start(&config(&format!(
        "  redis: redis://127.0.0.1:{dead}\n  timeout: 500ms"
    )));
    let (status, body, retry) = ping(&e, "/ping/rollup/start", Some(TOKEN), vec![]).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("send it again"), "{body}");
    assert_eq!(retry.as_deref(), Some("5"));
    e.wait_for("the store reported down", Duration::from_secs(10), |m| {
        m.get("pulse_job_store_up", &[("store", "redis")]) == Some(0.0)
    })
    .await;
    // The exporter itself goes on serving.
    assert!(e.get("/-/healthy").await.contains("Healthy"));
}

/// A `rediss://` store with `tls:`, as a Redis source takes it: pings go through a Redis that
/// asks every client for a certificate its CA signed. Without the client certificate the
/// server refuses the store, and pings are refused with 503 while pulse_job_store_up says why.
#[tokio::test]
async fn a_store_behind_tls_takes_pings_with_its_ca_and_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let (_server, port) = ca.redis_server(dir.path());
    let path = |p: &std::path::Path| p.display().to_string();
    let store = |tls: String| {
        config(&format!(
            "  redis: rediss://127.0.0.1:{port}\n  prefix: \"tls:\"\n  timeout: 2s\n  tls: {{ {tls} }}"
        ))
    };
    let trusted = Exporter::start(&store(format!(
        "ca_file: {}, cert_file: {}, key_file: {}",
        path(&ca.ca),
        path(&ca.client_cert),
        path(&ca.client_key)
    )));
    let (status, body, _) = ping(&trusted, "/ping/rollup/success", Some(TOKEN), vec![]).await;
    assert_eq!(status, 200, "{body}");
    trusted
        .wait_for(
            "the ping kept in the TLS store",
            Duration::from_secs(10),
            |m| {
                m.get("pulse_job_store_up", &[("store", "redis")]) == Some(1.0)
                    && job(m, "pulse_job_last_success_timestamp_seconds", "rollup").is_some()
            },
        )
        .await;
    let no_cert = Exporter::start(&store(format!("ca_file: {}", path(&ca.ca))));
    let (status, body, retry) = ping(&no_cert, "/ping/rollup/start", Some(TOKEN), vec![]).await;
    assert_eq!((status, retry.as_deref()), (503, Some("5")), "{body}");
    no_cert
        .wait_for("the store reported down", Duration::from_secs(10), |m| {
            m.get("pulse_job_store_up", &[("store", "redis")]) == Some(0.0)
        })
        .await;
    // `tls:` on a plain URL, or on a Postgres store, is a config error naming the field.
    for (url, says) in [
        (format!("redis: redis://127.0.0.1:{port}"), "rediss://"),
        ("postgres: postgres://127.0.0.1/x".to_owned(), "sslrootcert"),
    ] {
        let file = write_temp(
            dir.path(),
            "bad.yml",
            &format!(
                "sources: []\njob_store: {{ {url}, tls: {{ ca_file: {} }} }}\n",
                path(&ca.ca)
            ),
        );
        let (code, _, err) = run_cli(&["check", "--config.file", file.to_str().unwrap()], &[]);
        assert_ne!(code, 0, "{url}");
        assert!(
            err.contains("job_store.tls") && err.contains(says),
            "{url}: {err}"
        );
    }
}

#[tokio::test]
async fn the_wrapper_reports_a_failing_commands_exit_code_and_log_tail() {
    let prefix = unique("pulse_wrap");
    let _cleanup = Cleanup::default().redis_keys(format!("{prefix}:*"));
    let e = Exporter::start(&config(&format!(
        "  redis: {REDIS_URL}\n  prefix: \"{prefix}:\""
    )));
    let url = e.url("");
    let env = [("PULSE_PING_TOKEN", TOKEN)];
    let (code, stdout, stderr) = run_cli(
        &[
            "run",
            "--job",
            "rollup",
            "--url",
            &url,
            "--",
            "sh",
            "-c",
            "echo rolling up; echo 'disk full' >&2; exit 3",
        ],
        &env,
    );
    assert_eq!(code, 3, "the command's own exit code: {stderr}");
    assert!(stdout.contains("rolling up"), "{stdout}");
    assert!(stderr.contains("disk full"), "{stderr}");
    assert!(!stderr.contains("not recorded"), "{stderr}");
    let m = e.metrics().await;
    assert_eq!(job(&m, "pulse_job_failing", "rollup"), Some(1.0));
    assert_eq!(job(&m, "pulse_job_last_exit_code", "rollup"), Some(3.0));
    assert_eq!(job(&m, "pulse_job_running", "rollup"), Some(0.0));
    assert!(job(&m, "pulse_job_last_duration_seconds", "rollup").is_some());
    assert_eq!(
        m.get(
            "pulse_job_runs_total",
            &[("job_name", "rollup"), ("outcome", "failure")]
        ),
        Some(1.0)
    );
    let page = e.get("/").await;
    assert!(
        page.contains("failed (exit code 3)") && page.contains("disk full"),
        "{page}"
    );

    // A command that succeeds clears the failure; one that cannot start is reported as 127.
    let (code, _, _) = run_cli(
        &["run", "--job", "rollup", "--url", &url, "--", "true"],
        &env,
    );
    assert_eq!(code, 0);
    let m = e.metrics().await;
    assert_eq!(job(&m, "pulse_job_failing", "rollup"), Some(0.0));
    let (code, _, stderr) = run_cli(
        &[
            "run",
            "--job",
            "rollup",
            "--url",
            &url,
            "--",
            "/nonexistent/job",
        ],
        &env,
    );
    assert_eq!(code, 127, "{stderr}");
    assert_eq!(
        job(&e.metrics().await, "pulse_job_last_exit_code", "rollup"),
        Some(127.0)
    );

    // An exporter that cannot be reached never changes the command's outcome.
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let (code, stdout, stderr) = run_cli(
        &[
            "run",
            "--job",
            "rollup",
            "--url",
            &dead,
            "--retry-for",
            "1s",
            "--",
            "sh",
            "-c",
            "echo ran; exit 5",
        ],
        &env,
    );
    assert_eq!(code, 5);
    assert!(stdout.contains("ran"), "{stdout}");
    assert!(stderr.contains("was not recorded"), "{stderr}");
    assert!(!stderr.contains(TOKEN));
}

const KEY: &str = "team-key-0123456789abcdef";

/// 12 first pings of 12 new jobs at once, six through each of two replicas, with a ping key
/// whose `max_jobs` is 2: exactly two are accepted (the cap is counted where the jobs are
/// stored), the other ten are refused with the cap in the message, and both replicas publish
/// both accepted jobs.
async fn a_key_makes_at_most_max_jobs_across_replicas(store: &str) {
    let config = format!(
        "sources: []\njob_store:\n{store}\n  refresh: 1s\njob_keys:\n  - {{ name: team, key: {KEY}, every: 1h, max_jobs: 2 }}\n"
    );
    let (a, b) = (Exporter::start(&config), Exporter::start(&config));
    let pings = (0..12).map(|i| {
        let e = if i % 2 == 0 { &a } else { &b };
        async move { ping(e, &format!("/ping/made-{i}"), Some(KEY), vec![]).await }
    });
    let answers = futures_util::future::join_all(pings).await;
    let accepted = answers.iter().filter(|(s, _, _)| *s == 200).count();
    assert_eq!(accepted, 2, "{answers:?}");
    for (status, body, _) in answers.iter().filter(|(s, _, _)| *s != 200) {
        assert_eq!(*status, 403, "{body}");
        assert!(body.contains("max_jobs") && body.contains('2'), "{body}");
    }
    for e in [&a, &b] {
        e.wait_for(
            "both accepted jobs published",
            Duration::from_secs(10),
            |m| m.find("pulse_job_info", &[("key", "team")]).len() == 2,
        )
        .await;
    }
}

#[tokio::test]
async fn a_ping_key_makes_at_most_max_jobs_in_redis_however_many_replicas_ping_at_once() {
    let prefix = unique("pulse_jobs_cap");
    let _cleanup = Cleanup::default().redis_keys(format!("{prefix}:*"));
    a_key_makes_at_most_max_jobs_across_replicas(&format!(
        "  redis: {REDIS_URL}\n  prefix: \"{prefix}:\""
    ))
    .await;
}

#[tokio::test]
async fn a_ping_key_makes_at_most_max_jobs_in_postgres_however_many_replicas_ping_at_once() {
    let table = unique("pulse_jobs_cap").to_lowercase();
    let _cleanup = Cleanup::default().pg(format!("DROP TABLE IF EXISTS {table}"));
    a_key_makes_at_most_max_jobs_across_replicas(&format!(
        "  postgres: {PG_URL}\n  table: {table}"
    ))
    .await;
}

/// A Redis store without persistence restarts empty under two replicas: the declared jobs'
/// deadlines are unchanged (each replica writes back the states it knew), and a job that is
/// late stays late: a real Prometheus scraping both replicas with the bundle's rules keeps
/// PulseJobLate firing through the restart, from the moment it first fired.
#[tokio::test]
async fn a_store_that_restarts_empty_keeps_every_deadline_and_a_late_job_late() {
    let server = servers("redis").into_iter().next().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut redis = server.start_redis(dir.path(), &[]);
    let port = redis.port;
    let store = format!("  redis: redis://127.0.0.1:{port}\n  prefix: \"jobs:\"");
    let (a, b) = (
        Exporter::start(&config(&store)),
        Exporter::start(&config(&store)),
    );
    assert_eq!(
        ping(&a, "/ping/rollup/success", Some(TOKEN), vec![])
            .await
            .0,
        200
    );
    let deadlines = |m: &Scrape| {
        (
            job(m, "pulse_job_deadline_timestamp_seconds", "rollup"),
            job(m, "pulse_job_deadline_timestamp_seconds", "never"),
        )
    };
    let mut before = Vec::new();
    for e in [&a, &b] {
        let m = e
            .wait_for(
                "both deadlines, the never-pinged job late",
                Duration::from_secs(15),
                |m| {
                    let (r, n) = deadlines(m);
                    r.is_some() && n.is_some_and(|n| n < now_secs() as f64)
                },
            )
            .await;
        before.push(deadlines(&m));
    }
    assert_eq!(before[0], before[1], "the replicas agree");
    let prom = JobsPrometheus::start(&[&a, &b]).await;
    let fired = prom.late_since("never", 2).await;
    // The store restarts empty, on the same port.
    redis.stop();
    let mut redis = server.start_redis_on(dir.path(), port, &[]);
    let restarted = std::time::Instant::now();
    for e in [&a, &b] {
        let m = e
            .wait_for(
                "the store back, the deadlines kept",
                Duration::from_secs(20),
                |m| {
                    m.get("pulse_job_store_up", &[]) == Some(1.0)
                        && restarted.elapsed() > Duration::from_secs(3)
                },
            )
            .await;
        assert_eq!(deadlines(&m), before[0], "{}", m.text);
    }
    // Written back into the store: a third replica started now reads them too.
    let c = Exporter::start(&config(&store));
    let m = c
        .wait_for(
            "the deadlines read from the store",
            Duration::from_secs(10),
            |m| deadlines(m).1.is_some(),
        )
        .await;
    assert_eq!(deadlines(&m), before[0]);
    // Through the restart and the write-back, the alert never resolved: a second firing would
    // have a later start.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        prom.late_since("never", 2).await,
        fired,
        "PulseJobLate resolved and fired again"
    );
    assert!(
        prom.late_since("rollup", 0).await.is_empty(),
        "the job that pinged is not late"
    );
    redis.stop();
}

/// A real Prometheus scraping exporter replicas every second and evaluating the bundle's rules.
struct JobsPrometheus {
    url: String,
    _scraper: Scraper,
}

impl JobsPrometheus {
    async fn start(replicas: &[&Exporter]) -> JobsPrometheus {
        let ports: Vec<u16> = replicas.iter().map(|e| e.port).collect();
        let rules = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts/pulse-alerts.yml"),
        )
        .unwrap();
        let scraper = Scraper::start(&ports, &[("pulse-alerts.yml", &rules)]).await;
        JobsPrometheus {
            url: scraper.url.clone(),
            _scraper: scraper,
        }
    }

    /// When PulseJobLate of `job` started firing on each replica, sorted; waits up to 30 s for
    /// `replicas` of them (none: returns what fires now).
    async fn late_since(&self, job: &str, replicas: usize) -> Vec<String> {
        let start = std::time::Instant::now();
        loop {
            let alerts = get_json(&format!("{}/api/v1/alerts", self.url))
                .await
                .and_then(|v| v["data"]["alerts"].as_array().cloned())
                .unwrap_or_default();
            let mut since: Vec<String> = alerts
                .iter()
                .filter(|a| {
                    a["labels"]["alertname"] == "PulseJobLate"
                        && a["labels"]["job_name"] == job
                        && a["state"] == "firing"
                })
                .map(|a| a["activeAt"].as_str().unwrap_or_default().to_owned())
                .collect();
            since.sort();
            if since.len() >= replicas {
                return since;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "PulseJobLate of {job} fires on {} of {replicas} replicas: {alerts:?}",
                since.len()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Pings 2.5 s apart to a store whose server closes idle sessions: the store's saved
/// connection is gone by the second ping, which must still be kept, not refused with 503. The
/// store reads back only every minute here, so its connection idles.
async fn idle_closed_store_takes_the_next_ping(store: &str) {
    let e = Exporter::start(&config(store).replace("refresh: 1s", "refresh: 1m"));
    for (n, path) in ["/ping/rollup/start", "/ping/rollup/success"]
        .iter()
        .enumerate()
    {
        if n > 0 {
            // Past the server's idle timeout of 1 s.
            tokio::time::sleep(Duration::from_millis(2500)).await;
        }
        let (status, body, _) = ping(&e, path, Some(TOKEN), vec![]).await;
        assert_eq!(status, 200, "{path} after {n} idle periods: {body}");
    }
    e.wait_for(
        "the run's success published",
        Duration::from_secs(10),
        |m| {
            m.get(
                "pulse_job_runs_total",
                &[("job_name", "rollup"), ("outcome", "success")],
            ) == Some(1.0)
        },
    )
    .await;
}

/// A Redis that closes idle clients (`timeout 1`, as managed Redis services and proxies do).
#[tokio::test]
async fn a_store_whose_redis_closes_idle_connections_still_takes_the_next_ping() {
    let server = servers("redis").into_iter().next().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let redis = server.start_redis(dir.path(), &["--timeout", "1"]);
    idle_closed_store_takes_the_next_ping(&format!(
        "  redis: redis://127.0.0.1:{}\n  prefix: \"jobs:\"",
        redis.port
    ))
    .await;
}

/// A Postgres that ends idle sessions (`idle_session_timeout`, here for the store's sessions
/// alone, set in its URL).
#[tokio::test]
async fn a_store_whose_postgres_ends_idle_sessions_still_takes_the_next_ping() {
    let table = unique("pulse_jobs_idle").to_lowercase();
    let _cleanup = Cleanup::default().pg(format!("DROP TABLE IF EXISTS {table}"));
    let url = PG_URL.to_string();
    let sep = if url.contains('?') { '&' } else { '?' };
    idle_closed_store_takes_the_next_ping(&format!(
        "  postgres: \"{url}{sep}options=-c%20idle_session_timeout%3D1000\"\n  table: {table}"
    ))
    .await;
}
