//! RabbitMQ source against the real broker (AMQP 127.0.0.1:5672, management API :15672),
//! each test in a vhost of its own.

use pulse_test_support as common;

use std::time::Duration;

use common::*;
use lapin::options::{BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use serde_json::json;

fn management_config(vhost: &str, extra: &str) -> String {
    format!(
        r#"
global: {{ interval: 1s, timeout: 800ms, health_interval: 1s, health_timeout: 800ms }}
sources:
  - name: broker
    kind: rabbitmq
    management_url: {RABBIT_API}
    username: guest
    password: guest
    vhosts: ["{vhost}"]
{extra}"#
    )
}

fn q<'a>(
    m: &Scrape,
    vhost: &'a str,
    queue: &'a str,
    metric: &str,
    extra: &[(&'a str, &'a str)],
) -> Option<f64> {
    let mut labels = vec![("vhost", vhost), ("queue", queue)];
    labels.extend_from_slice(extra);
    m.get(metric, &labels)
}

#[tokio::test]
async fn depth_consumers_and_dead_letter_queues_through_the_management_api() {
    let vh = RabbitVhost::create().await;
    let v = vh.name.clone();
    vh.declare("posts.dlq", json!({})).await;
    vh.declare(
        "posts.scheduled",
        json!({"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "posts.dlq"}),
    )
    .await;
    vh.declare("ignored.queue", json!({})).await;
    vh.publish("posts.scheduled", 5).await;
    vh.publish("posts.dlq", 2).await;
    let e = InProcess::start(&management_config(
        &v,
        "    queues: { include: [\"^posts\\\\.\"] }\n",
    ));

    let m = e
        .wait_for(
            "depth of the scheduled queue",
            Duration::from_secs(20),
            |m| {
                q(
                    m,
                    &v,
                    "posts.scheduled",
                    "pulse_rabbitmq_queue_messages",
                    &[("state", "ready")],
                ) == Some(5.0)
                    && q(
                        m,
                        &v,
                        "posts.dlq",
                        "pulse_rabbitmq_queue_messages",
                        &[("state", "ready")],
                    ) == Some(2.0)
                    // The management API fills a new queue's fields over a few stats rounds.
                    && q(m, &v, "posts.scheduled", "pulse_rabbitmq_queue_consumers", &[]).is_some()
                    && m.get("pulse_rabbitmq_vhost_messages", &[("vhost", &v), ("state", "ready")]) == Some(7.0)
                    && m.get("pulse_source_up", &[("source", "broker")]) == Some(1.0)
            },
        )
        .await;
    assert_eq!(
        q(
            &m,
            &v,
            "posts.scheduled",
            "pulse_rabbitmq_queue_consumers",
            &[]
        ),
        Some(0.0)
    );
    assert_eq!(
        q(
            &m,
            &v,
            "posts.scheduled",
            "pulse_rabbitmq_queue_messages",
            &[("dead_letter", "false"), ("state", "ready")]
        ),
        Some(5.0)
    );
    assert_eq!(
        q(
            &m,
            &v,
            "posts.dlq",
            "pulse_rabbitmq_queue_messages",
            &[("dead_letter", "true"), ("state", "ready")]
        ),
        Some(2.0),
        "the queue named by x-dead-letter-routing-key is labelled a dead-letter queue"
    );
    assert!(
        m.find(
            "pulse_rabbitmq_queue_messages",
            &[("queue", "ignored.queue")]
        )
        .is_empty(),
        "excluded by the include filter"
    );
    #[rustfmt::skip]
    let samples: &[Expected] = &[
        ("pulse_rabbitmq_vhost_queues", &[("vhost", &v)], Some(2.0)),
        ("pulse_rabbitmq_vhost_messages", &[("vhost", &v), ("state", "ready")], Some(7.0)),
        ("pulse_source_up", &[("source", "broker"), ("kind", "rabbitmq")], Some(1.0)),
    ];
    assert_samples(&m, samples);
    assert!(!m
        .find("pulse_rabbitmq_node_alarm", &[("alarm", "memory")])
        .is_empty());
    assert!(!m.find("pulse_rabbitmq_node_running", &[]).is_empty());

    // A consumer attaches (prefetch 1, never acks): one consumer, one message unacked.
    let conn = lapin::Connection::connect(&vh.amqp_url(), lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.basic_qos(1, BasicQosOptions::default()).await.unwrap();
    let _consumer = ch
        .basic_consume(
            "posts.scheduled".into(),
            "pulse-test".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    e.wait_for("the consumer counted", Duration::from_secs(20), |m| {
        q(
            m,
            &v,
            "posts.scheduled",
            "pulse_rabbitmq_queue_consumers",
            &[],
        ) == Some(1.0)
            && q(
                m,
                &v,
                "posts.scheduled",
                "pulse_rabbitmq_queue_messages",
                &[("state", "unacked")],
            ) == Some(1.0)
    })
    .await;
    let _ = conn.close(200, "bye".into()).await;

    // A queue that disappears disappears from /metrics.
    vh.delete_queue("posts.dlq").await;
    e.wait_for("deleted queue gone", Duration::from_secs(20), |m| {
        m.find("pulse_rabbitmq_queue_messages", &[("queue", "posts.dlq")])
            .is_empty()
    })
    .await;
    vh.delete().await;
}

#[tokio::test]
async fn dead_letter_exchange_bindings_and_name_patterns_mark_dead_letter_queues() {
    let vh = RabbitVhost::create().await;
    let v = vh.name.clone();
    let s = reqwest::Client::new()
        .put(format!("{RABBIT_API}/api/exchanges/{v}/jobs.dlx"))
        .basic_auth("guest", Some("guest"))
        .json(&json!({"type": "fanout", "durable": false}))
        .send()
        .await
        .unwrap()
        .status();
    assert!(s.is_success());
    vh.declare("jobs.failed", json!({})).await;
    let s = reqwest::Client::new()
        .post(format!(
            "{RABBIT_API}/api/bindings/{v}/e/jobs.dlx/q/jobs.failed"
        ))
        .basic_auth("guest", Some("guest"))
        .json(&json!({"routing_key": ""}))
        .send()
        .await
        .unwrap()
        .status();
    assert!(s.is_success());
    vh.declare("jobs.ai", json!({"x-dead-letter-exchange": "jobs.dlx"}))
        .await;
    vh.declare("legacy.errors", json!({})).await;
    let e = InProcess::start(&management_config(
        &v,
        "    dead_letter_pattern: \"\\\\.errors$\"\n",
    ));
    let m = e
        .wait_for("queues", Duration::from_secs(20), |m| {
            q(
                m,
                &v,
                "legacy.errors",
                "pulse_rabbitmq_queue_consumers",
                &[],
            )
            .is_some()
                && q(m, &v, "jobs.failed", "pulse_rabbitmq_queue_consumers", &[]).is_some()
                && q(m, &v, "jobs.ai", "pulse_rabbitmq_queue_consumers", &[]).is_some()
        })
        .await;
    assert_eq!(
        q(
            &m,
            &v,
            "jobs.failed",
            "pulse_rabbitmq_queue_consumers",
            &[("dead_letter", "true")]
        ),
        Some(0.0)
    );
    assert_eq!(
        q(
            &m,
            &v,
            "legacy.errors",
            "pulse_rabbitmq_queue_consumers",
            &[("dead_letter", "true")]
        ),
        Some(0.0)
    );
    assert_eq!(
        q(
            &m,
            &v,
            "jobs.ai",
            "pulse_rabbitmq_queue_consumers",
            &[("dead_letter", "false")]
        ),
        Some(0.0)
    );
    vh.delete().await;
}

#[tokio::test]
async fn queue_cap_keeps_the_deepest_queues_and_counts_the_rest() {
    let vh = RabbitVhost::create().await;
    let v = vh.name.clone();
    for (name, n) in [("a", 1), ("b", 3), ("c", 2)] {
        vh.declare(name, json!({})).await;
        vh.publish(name, n).await;
    }
    let e = InProcess::start(&management_config(&v, "    max_queues: 2\n"));
    let m = e
        .wait_for("capped queues", Duration::from_secs(20), |m| {
            m.get(
                "pulse_rabbitmq_vhost_messages",
                &[("vhost", &v), ("state", "ready")],
            ) == Some(6.0)
                && q(
                    m,
                    &v,
                    "c",
                    "pulse_rabbitmq_queue_messages",
                    &[("state", "ready")],
                ) == Some(2.0)
        })
        .await;
    assert_eq!(
        q(
            &m,
            &v,
            "b",
            "pulse_rabbitmq_queue_messages",
            &[("state", "ready")]
        ),
        Some(3.0)
    );
    assert!(
        m.find(
            "pulse_rabbitmq_queue_messages",
            &[("vhost", &v), ("queue", "a")]
        )
        .is_empty(),
        "the shallowest queue is dropped"
    );
    assert_eq!(
        m.get("pulse_rabbitmq_vhost_queues", &[("vhost", &v)]),
        Some(3.0),
        "totals count every queue"
    );
    assert!(
        m.get(
            "pulse_check_series_dropped_total",
            &[("source", "broker"), ("check", "queues")]
        )
        .unwrap()
            >= 1.0
    );
    vh.delete().await;
}

#[tokio::test]
async fn amqp_only_mode_reads_named_queues() {
    let vh = RabbitVhost::create().await;
    vh.declare("ai.jobs", json!({})).await;
    vh.publish("ai.jobs", 4).await;
    let config = format!(
        r#"
global: {{ interval: 1s, timeout: 800ms, health_interval: 1s, health_timeout: 800ms }}
sources:
  - name: amqp-only
    kind: rabbitmq
    amqp_url: {}
    amqp_queues: [ai.jobs, not.there]
"#,
        vh.amqp_url()
    );
    let e = Exporter::start(&config);
    let v = vh.name.clone();
    let m = e
        .wait_for("AMQP depth", Duration::from_secs(20), |m| {
            q(
                m,
                &v,
                "ai.jobs",
                "pulse_rabbitmq_queue_messages",
                &[("state", "ready")],
            ) == Some(4.0)
                && m.get("pulse_source_up", &[("source", "amqp-only")]) == Some(1.0)
                && m.get(
                    "pulse_check_success",
                    &[("source", "amqp-only"), ("check", "amqp_queues")],
                ) == Some(1.0)
        })
        .await;
    assert_eq!(
        q(&m, &v, "ai.jobs", "pulse_rabbitmq_queue_consumers", &[]),
        Some(0.0)
    );
    assert!(
        m.find("pulse_rabbitmq_queue_messages", &[("queue", "not.there")])
            .is_empty(),
        "a missing queue is absent"
    );
    assert_eq!(
        m.get(
            "pulse_check_success",
            &[("source", "amqp-only"), ("check", "amqp_queues")]
        ),
        Some(1.0)
    );
    vh.delete().await;
}

#[tokio::test]
async fn wrong_password_is_auth_and_names_the_user_only() {
    let closed = closed_port();
    let config = format!(
        r#"
global: {{ health_interval: 1s, health_timeout: 800ms }}
sources:
  - name: wrong-pw
    kind: rabbitmq
    management_url: {RABBIT_API}
    username: guest
    password: NotThePassword-9d2
  - name: no-api
    kind: rabbitmq
    management_url: http://127.0.0.1:{closed}
    username: monitor
    password: other-password-41
"#
    );
    let e = Exporter::start(&config);
    let m = e
        .wait_for("auth and connect failures", Duration::from_secs(15), |m| {
            m.probe_failed_with("wrong-pw", "auth") && m.probe_failed_with("no-api", "connect")
        })
        .await;
    assert_eq!(
        m.get("pulse_source_up", &[("source", "wrong-pw")]),
        Some(0.0)
    );
    let logs = e.logs();
    assert!(
        logs.contains("refused user \\\"guest\\\"") || logs.contains("refused user \"guest\""),
        "{logs}"
    );
    assert!(!logs.contains("NotThePassword-9d2") && !m.text.contains("NotThePassword-9d2"));
}

#[tokio::test]
async fn the_head_message_timestamp_and_acknowledgements_are_published() {
    let vh = RabbitVhost::create().await;
    let v = vh.name.clone();
    vh.declare("jobs", json!({})).await;
    let before = now_secs();
    vh.publish("jobs", 3).await;
    // A worker takes two jobs and acknowledges them; the third waits at the head.
    let amqp = lapin::Connection::connect(&vh.amqp_url(), lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let ch = amqp.create_channel().await.unwrap();
    for _ in 0..2 {
        let got = ch
            .basic_get("jobs".into(), lapin::options::BasicGetOptions::default())
            .await
            .unwrap()
            .expect("a message to take");
        got.delivery
            .ack(lapin::options::BasicAckOptions::default())
            .await
            .unwrap();
    }
    let e = InProcess::start(&management_config(&v, ""));
    let m = e
        .wait_for(
            "acks and the head's timestamp",
            Duration::from_secs(20),
            |m| {
                q(
                    m,
                    &v,
                    "jobs",
                    "pulse_rabbitmq_queue_messages_acked_total",
                    &[],
                ) == Some(2.0)
                    && q(
                        m,
                        &v,
                        "jobs",
                        "pulse_rabbitmq_queue_head_message_timestamp_seconds",
                        &[],
                    )
                    .is_some()
            },
        )
        .await;
    let head = q(
        &m,
        &v,
        "jobs",
        "pulse_rabbitmq_queue_head_message_timestamp_seconds",
        &[],
    )
    .unwrap();
    assert!(
        (before as f64..=now_secs() as f64).contains(&head),
        "head timestamp {head} is when the job was published ({before}..)"
    );
    assert!(m
        .text
        .contains("# TYPE pulse_rabbitmq_queue_messages_acked_total counter"));
    let _ = amqp.close(200, "bye".into()).await;
    vh.delete().await;
}

#[tokio::test]
async fn a_private_ca_and_a_client_certificate_reach_the_management_api_and_amqp_over_tls() {
    let vh = RabbitVhost::create().await;
    vh.declare("ai.jobs", json!({})).await;
    vh.publish("ai.jobs", 3).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    // TLS fronts that require a client certificate of the CA, before the real broker.
    let api = TlsFront::start(&ca, "127.0.0.1:15672").await;
    let amqp = TlsFront::start(&ca, "127.0.0.1:5672").await;
    let amqps = vh
        .amqp_url()
        .replace("amqp://", "amqps://")
        .replace(":5672/", &format!(":{}/", amqp.port));
    let tls = format!(
        "{{ ca_file: {}, cert_file: {}, key_file: {} }}",
        ca.ca.display(),
        ca.client_cert.display(),
        ca.client_key.display()
    );
    let config = format!(
        r#"
global: {{ interval: 1s, timeout: 800ms, health_interval: 1s, health_timeout: 800ms }}
sources:
  - name: trusted
    kind: rabbitmq
    management_url: https://127.0.0.1:{api}
    username: guest
    password: guest
    vhosts: ["{v}"]
    amqp_url: {amqps}
    amqp_queues: [ai.jobs]
    tls: {tls}
  - name: public-roots
    kind: rabbitmq
    management_url: https://127.0.0.1:{api}
    username: guest
    password: guest
    vhosts: ["{v}"]
"#,
        api = api.port,
        v = vh.name,
    );
    // The binary: it installs the process's TLS provider, which lapin's TLS uses.
    let e = Exporter::start(&config);
    let v = vh.name.clone();
    let m = e
        .wait_for("both APIs read over TLS", Duration::from_secs(30), |m| {
            m.get(
                "pulse_check_success",
                &[("source", "trusted"), ("check", "amqp_queues")],
            ) == Some(1.0)
                && m.get("pulse_source_up", &[("source", "trusted")]) == Some(1.0)
                && m.probe_failed("public-roots")
                && m.find("pulse_tls_certificate_expiry_timestamp_seconds", &[])
                    .len()
                    == 3
                // The depth comes from the management API's queue check (the AMQP check of a
                // source that reads both publishes consumers only).
                // (which fills a new queue's counts over a few statistics rounds).
                && m.find(
                    "pulse_rabbitmq_queue_messages",
                    &[("vhost", &v), ("queue", "ai.jobs"), ("state", "ready")],
                )
                .iter()
                .any(|s| s.value == 3.0)
        })
        .await;
    // Both TLS endpoints' certificates, for the source refused by its client too.
    let (api_at, amqp_at) = (
        format!("127.0.0.1:{}", api.port),
        format!("127.0.0.1:{}", amqp.port),
    );
    for (source, endpoint) in [
        ("trusted", &api_at),
        ("trusted", &amqp_at),
        ("public-roots", &api_at),
    ] {
        assert_eq!(
            m.certificate_expiry(source, endpoint),
            Some(ca.server_not_after),
            "{source} {endpoint}"
        );
    }
    let depth = m.find(
        "pulse_rabbitmq_queue_messages",
        &[("vhost", &v), ("queue", "ai.jobs"), ("state", "ready")],
    );
    assert!(
        !depth.is_empty() && depth.iter().all(|s| s.value == 3.0),
        "{depth:?}"
    );
    assert_eq!(
        m.get("pulse_source_up", &[("source", "public-roots")]),
        Some(0.0)
    );
    drop(e);
    vh.delete().await;
}

/// The management API as a broker with its statistics off answers it
/// (`management_agent.disable_metrics_collector`): every request goes to the real one with
/// `disable_stats=true` added, which RabbitMQ honours per request exactly as the setting does.
struct StatsOff {
    port: u16,
    _server: tokio::task::JoinHandle<()>,
}

impl StatsOff {
    async fn start() -> StatsOff {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new().fallback(|req: axum::extract::Request| async move {
            let uri = req.uri();
            let sep = if uri.query().is_some() { "&" } else { "?" };
            let url = format!("{RABBIT_API}{uri}{sep}disable_stats=true");
            let mut fwd = reqwest::Client::new().get(url);
            if let Some(auth) = req.headers().get("authorization") {
                fwd = fwd.header("authorization", auth.clone());
            }
            let resp = fwd.send().await.unwrap();
            let status = axum::http::StatusCode::from_u16(resp.status().as_u16()).unwrap();
            let body = resp.bytes().await.unwrap();
            (status, [("content-type", "application/json")], body)
        });
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        StatsOff {
            port,
            _server: server,
        }
    }
}

/// With statistics off the broker still counts messages when asked for queue totals: depths
/// and vhost totals are right (100 waiting is 100, never 0), the mode is published and logged
/// with what is blind, node alarms come from the health check, and what the broker no longer
/// says (consumers, rates, acks, head timestamps, node limits, partitions) is absent, never 0.
#[tokio::test]
async fn a_broker_with_statistics_off_still_reports_depths_and_says_what_is_blind() {
    let vh = RabbitVhost::create().await;
    let v = vh.name.clone();
    vh.declare("jobs", json!({})).await;
    vh.declare("mail", json!({})).await;
    vh.publish("jobs", 100).await;
    let api = StatsOff::start().await;
    let config = format!(
        r#"
global: {{ interval: 1s, timeout: 800ms, health_interval: 1s, health_timeout: 800ms }}
sources:
  - name: broker
    kind: rabbitmq
    management_url: http://127.0.0.1:{}
    username: guest
    password: guest
    vhosts: ["{v}"]
    amqp_url: {}
    amqp_queues: [jobs]
"#,
        api.port,
        vh.amqp_url()
    );
    let e = Exporter::start(&config);
    let m = e
        .wait_for(
            "the depth with statistics off",
            Duration::from_secs(20),
            |m| {
                q(
                    m,
                    &v,
                    "jobs",
                    "pulse_rabbitmq_queue_messages",
                    &[("state", "ready")],
                ) == Some(100.0)
                    && m.get("pulse_rabbitmq_node_alarm", &[("alarm", "memory")])
                        .is_some()
                    && q(m, &v, "jobs", "pulse_rabbitmq_queue_consumers", &[]).is_some()
            },
        )
        .await;
    assert_eq!(
        m.get(
            "pulse_rabbitmq_vhost_messages",
            &[("vhost", &v), ("state", "ready")]
        ),
        Some(100.0),
        "{}",
        m.text
    );
    assert_eq!(m.get("pulse_rabbitmq_statistics_enabled", &[]), Some(0.0));
    assert_eq!(
        m.get("pulse_rabbitmq_node_alarm", &[("alarm", "memory")]),
        Some(0.0)
    );
    assert_eq!(
        m.get("pulse_rabbitmq_node_alarm", &[("alarm", "disk")]),
        Some(0.0)
    );
    assert_eq!(m.sum("pulse_rabbitmq_node_running", &[]), 1.0);
    // Consumers of the queue named in amqp_queues, from its passive declare; none of the
    // other, which only the blind management API reads.
    assert_eq!(
        q(&m, &v, "jobs", "pulse_rabbitmq_queue_consumers", &[]),
        Some(0.0)
    );
    assert_eq!(
        q(&m, &v, "mail", "pulse_rabbitmq_queue_consumers", &[]),
        None
    );
    assert_eq!(
        q(
            &m,
            &v,
            "mail",
            "pulse_rabbitmq_queue_messages",
            &[("state", "ready")]
        ),
        Some(0.0)
    );
    for absent in [
        "pulse_rabbitmq_queue_message_rate",
        "pulse_rabbitmq_queue_messages_acked_total",
        "pulse_rabbitmq_queue_head_message_timestamp_seconds",
        "pulse_rabbitmq_node_resource_used",
        "pulse_rabbitmq_node_resource_limit",
        "pulse_rabbitmq_node_partitions",
        "pulse_rabbitmq_unroutable_messages_total",
    ] {
        assert!(
            m.find(absent, &[]).is_empty(),
            "{absent} published while statistics are off:\n{}",
            m.text
        );
    }
    assert_eq!(
        q(
            &m,
            &v,
            "jobs",
            "pulse_rabbitmq_queue_info",
            &[("type", "classic")]
        ),
        Some(1.0),
        "{}",
        m.text
    );
    let logs = e.logs();
    // The two checks of the source never publish the same series.
    assert!(!logs.contains("series.collision"), "{logs}");
    assert_eq!(
        logs.matches("management statistics are off").count(),
        1,
        "one warning, however many probes: {logs}"
    );
    assert!(
        logs.contains("PulseOldestJobTooOld"),
        "the warning names what is blind: {logs}"
    );

    // The same broker with statistics on: the mode flips, and consumers are back.
    let direct = management_config(&v, "");
    e.write_config(&direct);
    assert!(e.reload().await.status().is_success());
    let m = e
        .wait_for("statistics on again", Duration::from_secs(20), |m| {
            m.get("pulse_rabbitmq_statistics_enabled", &[]) == Some(1.0)
                && q(m, &v, "mail", "pulse_rabbitmq_queue_consumers", &[]).is_some()
                && m.get(
                    "pulse_rabbitmq_vhost_messages",
                    &[("vhost", &v), ("state", "ready")],
                ) == Some(100.0)
        })
        .await;
    assert_eq!(
        m.get(
            "pulse_rabbitmq_vhost_messages",
            &[("vhost", &v), ("state", "ready")]
        ),
        Some(100.0)
    );
    vh.delete().await;
}
