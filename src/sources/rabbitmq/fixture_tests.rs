//! The broker's answers as RabbitMQ 3.10 (captured live here) and 4.0 to 4.3 give them, with
//! statistics on and off (`tests/fixtures/rabbitmq/`, each folder naming the version and the
//! sources of its shapes), through the mappings the probes use: what is published for each
//! shape, and that no count the broker did not give is published, as 0 or otherwise.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::health;
use super::queues::QueuesProbe;
use crate::series::sample::Output;

fn folder(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rabbitmq")
        .join(name)
}

fn load(dir: &Path, file: &str) -> Json {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn one(out: &Output, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    out.labelled_one(name, labels)
}

/// The health probe's samples for a folder: the node list's alarms, or (statistics off) the
/// alarms health check's, as the probe asks for it.
fn health_of(dir: &Path, nodes_file: &str, overview_file: &str) -> Output {
    let overview = load(dir, overview_file);
    let nodes = load(dir, nodes_file);
    let alarms = (!health::reports_alarms(&nodes)).then(|| load(dir, "health-alarms.json"));
    health::samples("mq", &overview, &nodes, alarms.as_ref())
}

/// The queue check's samples for a page of `/api/queues`, every queue selected.
fn queues_of(page: &Json) -> Output {
    QueuesProbe::unconnected("{ management_url: 'http://x' }", 100).fold_page(page)
}

/// For every queue of the page: each count it lacks is absent, and each it has is published
/// as it is.
fn nothing_unread_is_published(page: &Json, out: &Output) {
    for q in page["items"].as_array().unwrap() {
        let name = q["name"].as_str().unwrap();
        for (field, metric, extra) in [
            (
                "messages_ready",
                "pulse_rabbitmq_queue_messages",
                Some(("state", "ready")),
            ),
            (
                "messages_unacknowledged",
                "pulse_rabbitmq_queue_messages",
                Some(("state", "unacked")),
            ),
            ("consumers", "pulse_rabbitmq_queue_consumers", None),
            (
                "head_message_timestamp",
                "pulse_rabbitmq_queue_head_message_timestamp_seconds",
                None,
            ),
        ] {
            let mut labels = vec![("queue", name)];
            labels.extend(extra);
            let published = one(out, metric, &labels);
            match q[field]
                .as_f64()
                .filter(|v| *v > 0.0 || field != "head_message_timestamp")
            {
                Some(v) => assert_eq!(published, Some(v), "{name} {field}"),
                None => assert_eq!(published, None, "{name}: {field} was not given"),
            }
        }
    }
}

const FOUR: [&str; 4] = ["4.0", "4.1", "4.2", "4.3"];

#[test]
fn rabbitmq_4_nodes_publish_no_sockets_and_partitions_only_before_khepri() {
    for version in FOUR {
        let dir = folder(&format!("{version}-stats-on"));
        let out = health_of(&dir, "nodes.json", "overview.json");
        assert_eq!(
            one(&out, "pulse_rabbitmq_statistics_enabled", &[]),
            Some(1.0)
        );
        // 0 of 0 sockets since 4.0: no limit, so no series.
        assert!(
            out.labelled(
                "pulse_rabbitmq_node_resource_limit",
                &[("resource", "sockets")]
            )
            .is_empty(),
            "{version}"
        );
        assert_eq!(
            one(
                &out,
                "pulse_rabbitmq_node_resource_limit",
                &[("node", "rabbit@mq-0"), ("resource", "file_descriptors")]
            ),
            Some(1048576.0),
            "{version}"
        );
        assert_eq!(
            one(
                &out,
                "pulse_rabbitmq_node_alarm",
                &[("node", "rabbit@mq-0"), ("alarm", "memory")]
            ),
            Some(1.0)
        );
        assert_eq!(
            one(
                &out,
                "pulse_rabbitmq_node_running",
                &[("node", "rabbit@mq-2")]
            ),
            Some(0.0)
        );
        // The stopped node says nothing of its alarms or limits.
        assert!(out
            .labelled("pulse_rabbitmq_node_alarm", &[("node", "rabbit@mq-2")])
            .is_empty());
        // Khepri (4.2's default, 4.3's only store) reports no partitions: none published.
        let partitions = out.labelled("pulse_rabbitmq_node_partitions", &[]);
        match version {
            "4.0" | "4.1" => assert_eq!(partitions, [0.0, 0.0], "{version}"),
            _ => assert!(partitions.is_empty(), "{version}: {partitions:?}"),
        }
    }
}

#[test]
fn with_statistics_off_alarms_come_from_the_health_check_and_limits_are_absent() {
    for version in FOUR {
        let dir = folder(&format!("{version}-stats-off"));
        let out = health_of(&dir, "nodes.json", "overview.json");
        assert_eq!(
            one(&out, "pulse_rabbitmq_statistics_enabled", &[]),
            Some(0.0),
            "{version}"
        );
        assert_eq!(
            one(
                &out,
                "pulse_rabbitmq_node_alarm",
                &[("node", "rabbit@mq-0"), ("alarm", "memory")]
            ),
            Some(1.0)
        );
        assert_eq!(
            one(
                &out,
                "pulse_rabbitmq_node_alarm",
                &[("node", "rabbit@mq-1"), ("alarm", "memory")]
            ),
            Some(0.0)
        );
        assert_eq!(
            one(
                &out,
                "pulse_rabbitmq_node_alarm",
                &[("node", "rabbit@mq-1"), ("alarm", "disk")]
            ),
            Some(0.0)
        );
        assert!(out
            .labelled("pulse_rabbitmq_node_alarm", &[("node", "rabbit@mq-2")])
            .is_empty());
        assert_eq!(
            one(
                &out,
                "pulse_rabbitmq_node_running",
                &[("node", "rabbit@mq-2")]
            ),
            Some(0.0)
        );
        for absent in [
            "pulse_rabbitmq_node_resource_used",
            "pulse_rabbitmq_node_resource_limit",
            "pulse_rabbitmq_node_partitions",
            "pulse_rabbitmq_unroutable_messages_total",
        ] {
            assert!(out.labelled(absent, &[]).is_empty(), "{version}: {absent}");
        }
    }
    // 3.10, captured live with disable_stats=true.
    let dir = folder("3.10-live");
    let out = health_of(
        &dir,
        "nodes-disable-stats.json",
        "overview-disable-stats.json",
    );
    assert_eq!(
        one(&out, "pulse_rabbitmq_statistics_enabled", &[]),
        Some(0.0)
    );
    assert_eq!(
        one(&out, "pulse_rabbitmq_node_alarm", &[("alarm", "memory")]),
        Some(0.0)
    );
    let out = health_of(&dir, "nodes.json", "overview.json");
    assert_eq!(
        one(&out, "pulse_rabbitmq_statistics_enabled", &[]),
        Some(1.0)
    );
    assert_eq!(
        one(
            &out,
            "pulse_rabbitmq_node_resource_limit",
            &[("resource", "sockets")]
        ),
        Some(832.0)
    );
}

#[test]
fn queues_publish_what_each_version_and_mode_gives_and_nothing_else() {
    for version in FOUR {
        for (mode, file) in [
            ("stats-on", "queues-page.json"),
            ("stats-off", "queues-page.json"),
            ("stats-off", "queues-totals-page.json"),
        ] {
            let page = load(&folder(&format!("{version}-{mode}")), file);
            let out = queues_of(&page);
            nothing_unread_is_published(&page, &out);
            // Every queue is listed, the quorum queue without a majority as such.
            assert_eq!(
                out.labelled("pulse_rabbitmq_queue_info", &[]).len(),
                5,
                "{version} {mode} {file}"
            );
            assert_eq!(
                one(
                    &out,
                    "pulse_rabbitmq_queue_info",
                    &[
                        ("queue", "payments"),
                        ("state", "minority"),
                        ("type", "quorum")
                    ]
                ),
                Some(1.0),
                "{version} {mode} {file}"
            );
            // Quorum queues and streams never report a head timestamp.
            for q in ["orders", "payments", "events"] {
                assert_eq!(
                    one(
                        &out,
                        "pulse_rabbitmq_queue_head_message_timestamp_seconds",
                        &[("queue", q)]
                    ),
                    None
                );
            }
            // The minority queue (its leader's node is down) and, with statistics off, the
            // stream give no counts: the vhost's totals are unknown, never the sum of the rest.
            assert!(
                out.labelled("pulse_rabbitmq_vhost_messages", &[])
                    .is_empty(),
                "{version} {mode} {file}"
            );
            assert_eq!(
                one(&out, "pulse_rabbitmq_vhost_queues", &[("vhost", "prod")]),
                Some(5.0)
            );
        }
        // With queue totals asked, statistics off still gives the depths of the others.
        let out = queues_of(&load(
            &folder(&format!("{version}-stats-off")),
            "queues-totals-page.json",
        ));
        assert_eq!(
            one(
                &out,
                "pulse_rabbitmq_queue_messages",
                &[("queue", "emails"), ("state", "ready")]
            ),
            Some(1200.0)
        );
        assert_eq!(
            one(
                &out,
                "pulse_rabbitmq_queue_messages",
                &[("queue", "orders"), ("state", "unacked")]
            ),
            Some(12.0)
        );
        assert!(out
            .labelled("pulse_rabbitmq_queue_consumers", &[])
            .is_empty());
    }
}

#[test]
fn rabbitmq_3_10_answers_captured_live_read_alike() {
    let dir = folder("3.10-live");
    let blind = load(&dir, "queues-disable-stats-page.json");
    let out = queues_of(&blind);
    nothing_unread_is_published(&blind, &out);
    assert!(out
        .labelled("pulse_rabbitmq_vhost_messages", &[])
        .is_empty());
    let totals = load(&dir, "queues-disable-stats-queue-totals-page.json");
    let out = queues_of(&totals);
    nothing_unread_is_published(&totals, &out);
    assert_eq!(
        one(
            &out,
            "pulse_rabbitmq_queue_messages",
            &[("queue", "q1"), ("state", "ready")]
        ),
        Some(5.0)
    );
    assert!(!out
        .labelled("pulse_rabbitmq_vhost_messages", &[("state", "ready")])
        .is_empty());
}

/// The scenario's cluster (three nodes, one stopped) as each 4.x folder gives it: the quorum
/// queue and the stream have no member to spare on every version, the metadata store only
/// on Khepri (4.2 on), whose majority still runs (two of three).
#[test]
fn rabbitmq_4_critical_check_and_metadata_store_majority() {
    for (version, khepri) in [("4.0", false), ("4.1", false), ("4.2", true), ("4.3", true)] {
        let dir = folder(&format!("{version}-stats-on"));
        let mut out = Output::default();
        let check = load(&dir, "health-node-is-quorum-critical.json");
        super::quorum::critical(&mut out, "mq", false, &check);
        let of = |what| one(&out, "pulse_rabbitmq_quorum_critical", &[("what", what)]);
        assert_eq!(of("quorum_queue"), Some(1.0), "{version}");
        assert_eq!(of("stream"), Some(1.0), "{version}");
        assert_eq!(
            of("metadata_store"),
            Some(f64::from(u8::from(khepri))),
            "{version}"
        );
        let h = health_of(&dir, "nodes.json", "overview.json");
        let store = one(&h, "pulse_rabbitmq_metadata_store_quorum", &[]);
        assert_eq!(store, khepri.then_some(1.0), "{version}");
    }
}
