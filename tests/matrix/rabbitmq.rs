//! RabbitMQ of the version matrix: Debian's 3.10, trixie's 4.0 and sid's 4.3 (Khepri), each a
//! node of its own. On each: classic, quorum and stream queues with messages ready and
//! unacknowledged, a consumer, a dead-letter queue, in a vhost of its own, read through the
//! management API; then the same node restarted with the management statistics collector
//! off, where a quorum queue's 100 waiting messages read 100 and its consumers come from the
//! broker's Prometheus endpoint (0 is 0, never absent).

use std::time::Duration;

use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions,
    BasicQosOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

use crate::common::*;

const VHOST: &str = "matrix";

/// Every RabbitMQ version: the same queues and readings, then statistics off.
#[test]
fn rabbitmq_versions() {
    let servers = servers("rabbitmq");
    each_version(&servers, |s| {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("node");
        let node = s.start_rabbitmq(&dir, &[]);
        runtime().block_on(statistics_on(s, &node));
        drop(node);
        let off = ["management_agent.disable_metrics_collector = true"];
        let node = s.start_rabbitmq(&dir, &off);
        runtime().block_on(statistics_off(s, &node));
        drop(node);
        if version_key(&s.version) >= vec![4] {
            runtime().block_on(cluster(s, tmp.path()));
        }
    });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Every exporter of these tests runs its checks and health probes each second.
const GLOBAL: &str =
    "global: { interval: 1s, timeout: 900ms, health_interval: 1s, health_timeout: 900ms }\n";

/// An exporter's config: [`GLOBAL`] and one source, written in flow style.
fn one_source(source: &str) -> String {
    format!("{GLOBAL}sources:\n  - {source}\n")
}

/// The exporter's source for the node: the management API, the Prometheus endpoint and AMQP
/// for three queues (consumers over AMQP; the stream skipped there).
fn config(node: &RabbitNode) -> String {
    format!(
        r#"{GLOBAL}sources:
  - name: broker
    kind: rabbitmq
    management_url: {}
    prometheus_url: {}
    amqp_url: {}
    amqp_queues: [jobs, work, events]
    username: guest
    password: guest
    vhosts: ["{VHOST}"]
"#,
        node.api_url(),
        node.prometheus_url(),
        node.amqp_url(VHOST),
    )
}

/// The vhost, with guest's permissions, through the management API.
fn create_vhost(node: &RabbitNode) {
    let api = node.api_url();
    for (path, body) in [
        (format!("{api}/api/vhosts/{VHOST}"), "{}".to_owned()),
        (
            format!("{api}/api/permissions/{VHOST}/guest"),
            r#"{"configure":".*","write":".*","read":".*"}"#.to_owned(),
        ),
    ] {
        run_ok(
            std::process::Command::new("curl")
                .args(["-sf", "-u", "guest:guest", "-X", "PUT", "-H"])
                .args(["content-type: application/json", "-d", &body, &path]),
            &format!("PUT {path}"),
        );
    }
}

async fn channel(node: &RabbitNode) -> (Connection, Channel) {
    channel_to(node, VHOST).await
}

/// A channel on a connection to `vhost` (percent-encoded) of `node`.
async fn channel_to(node: &RabbitNode, vhost: &str) -> (Connection, Channel) {
    let conn = Connection::connect(&node.amqp_url(vhost), ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| panic!("AMQP to {}: {e}\n{}", node.broker.port, node.broker.logs()));
    let ch = conn.create_channel().await.unwrap();
    (conn, ch)
}

async fn declare(ch: &Channel, name: &str, args: &[(&str, AMQPValue)]) {
    let mut table = FieldTable::default();
    for (k, v) in args {
        table.insert((*k).into(), v.clone());
    }
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare(name.into(), durable, table)
        .await
        .unwrap_or_else(|e| panic!("declare {name}: {e}"));
}

/// `n` persistent messages stamped with the time, to `queue`, confirmed.
async fn publish(ch: &Channel, queue: &str, n: usize) {
    ch.confirm_select(Default::default()).await.unwrap();
    let props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_timestamp(now_secs());
    for _ in 0..n {
        ch.basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            b"job",
            props.clone(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

/// The queues: `jobs` (classic, dead-lettering into `jobs.dlq`), `work` (quorum, a
/// consumer holding two unacknowledged after acknowledging two), `events` (stream).
async fn set_up(node: &RabbitNode) -> (Connection, Channel) {
    create_vhost(node);
    let (conn, ch) = channel(node).await;
    declare(&ch, "jobs.dlq", &[]).await;
    let dlx = [
        ("x-dead-letter-exchange", text("")),
        ("x-dead-letter-routing-key", text("jobs.dlq")),
    ];
    declare(&ch, "jobs", &dlx).await;
    declare(&ch, "work", &[("x-queue-type", text("quorum"))]).await;
    declare(&ch, "events", &[("x-queue-type", text("stream"))]).await;
    publish(&ch, "jobs", 5).await;
    publish(&ch, "work", 6).await;
    publish(&ch, "events", 3).await;
    // One job fails: rejected without requeue, it goes to the dead-letter queue.
    let failed = ch
        .basic_get("jobs".into(), BasicGetOptions::default())
        .await
        .unwrap()
        .expect("a job");
    failed
        .delivery
        .nack(BasicNackOptions::default())
        .await
        .unwrap();
    let consumer = consume(node, "work", 2).await;
    (conn, consumer)
}

/// A consumer on `queue` that acknowledges `acks` messages and then holds two unacknowledged
/// (its prefetch), on a connection of its own; its channel.
async fn consume(node: &RabbitNode, queue: &str, acks: usize) -> Channel {
    let (conn, ch) = channel(node).await;
    std::mem::forget(conn); // held open until the node stops
    ch.basic_qos(2, BasicQosOptions::default()).await.unwrap();
    let mut deliveries = ch
        .basic_consume(
            queue.into(),
            "matrix".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    use futures_util::StreamExt;
    for _ in 0..acks {
        let d = deliveries.next().await.expect("a delivery").unwrap();
        d.ack(BasicAckOptions::default()).await.unwrap();
    }
    std::mem::forget(deliveries);
    ch
}

fn q(m: &Scrape, queue: &str, metric: &str, extra: &[(&str, &str)]) -> Option<f64> {
    let mut labels = vec![("vhost", VHOST), ("queue", queue)];
    labels.extend_from_slice(extra);
    m.get(metric, &labels)
}

fn ready(m: &Scrape, queue: &str) -> Option<f64> {
    q(
        m,
        queue,
        "pulse_rabbitmq_queue_messages",
        &[("state", "ready")],
    )
}

fn unacked(m: &Scrape, queue: &str) -> Option<f64> {
    q(
        m,
        queue,
        "pulse_rabbitmq_queue_messages",
        &[("state", "unacked")],
    )
}

/// Statistics on: depths, consumers, dead letters, types, acknowledgements, the classic
/// queue's head timestamp and the quorum queue's drain time, as on 3.10.
async fn statistics_on(s: &Server, node: &RabbitNode) {
    let (_conn, _consumer) = set_up(node).await;
    let e = Exporter::start(&config(node));
    let m = e
        .wait_for("every queue read", Duration::from_secs(60), |m| {
            ready(m, "jobs") == Some(4.0)
                && ready(m, "jobs.dlq") == Some(1.0)
                && ready(m, "work") == Some(2.0)
                && unacked(m, "work") == Some(2.0)
                && q(m, "work", "pulse_rabbitmq_queue_consumers", &[]) == Some(1.0)
                && q(m, "work", "pulse_rabbitmq_queue_messages_acked_total", &[]) == Some(2.0)
                && q(m, "work", "pulse_rabbitmq_queue_drain_seconds", &[]).is_some()
        })
        .await;
    assert_eq!(
        m.get("pulse_rabbitmq_statistics_enabled", &[]),
        Some(1.0),
        "{}: {}",
        s.name,
        m.text
    );
    assert_eq!(m.sum("pulse_rabbitmq_node_running", &[]), 1.0);
    for (queue, kind) in [
        ("jobs", "classic"),
        ("jobs.dlq", "classic"),
        ("work", "quorum"),
        ("events", "stream"),
    ] {
        assert_eq!(
            q(&m, queue, "pulse_rabbitmq_queue_info", &[("type", kind)]),
            Some(1.0),
            "{queue} is a {kind} queue: {}",
            m.text
        );
    }
    let dead = |queue| {
        m.find(
            "pulse_rabbitmq_queue_info",
            &[("vhost", VHOST), ("queue", queue)],
        )
        .first()
        .and_then(|s| s.labels.get("dead_letter").cloned())
    };
    assert_eq!(dead("jobs.dlq").as_deref(), Some("true"));
    assert_eq!(dead("jobs").as_deref(), Some("false"));
    let head = q(
        &m,
        "jobs",
        "pulse_rabbitmq_queue_head_message_timestamp_seconds",
        &[],
    )
    .expect("the classic queue's head timestamp");
    assert!(head <= now_secs() as f64 && head > now_secs() as f64 - 600.0);
    // Quorum queues and streams give no head timestamp: the drain time is their signal.
    assert_eq!(
        q(
            &m,
            "work",
            "pulse_rabbitmq_queue_head_message_timestamp_seconds",
            &[]
        ),
        None
    );
    assert_eq!(ready(&m, "events"), Some(3.0), "{}", m.text);
    // The stream's consumers come from the management API: over AMQP it is skipped, its
    // type read from the management API.
    assert_eq!(
        q(&m, "events", "pulse_rabbitmq_queue_consumers", &[]),
        Some(0.0),
        "{}",
        m.text
    );
    let logs = e.logs();
    assert_eq!(
        logs.matches("event=rabbitmq.amqp_stream").count(),
        1,
        "{logs}"
    );
    assert!(!logs.contains("series.collision"), "{logs}");
    stream_lag(s, node, &e).await;
    amqp_only(s, node).await;
}

/// 5 more messages in the stream (8, each confirmed alone, so each a chunk of its own), then a
/// stream-protocol consumer that reads its first chunk and no more: the exporter's lag is the
/// broker's own for it (its offset lag), above 0 and below the 8.
async fn stream_lag(s: &Server, node: &RabbitNode, e: &Exporter) {
    let lag = |m: &Scrape| {
        q(
            m,
            "events",
            "pulse_rabbitmq_stream_consumer_lag_messages",
            &[],
        )
    };
    assert_eq!(lag(&e.metrics().await), None, "no stream consumer, no lag");
    let (_conn, ch) = channel(node).await;
    publish(&ch, "events", 5).await;
    let _consumer = stream_consumer(node, VHOST, "events").await;
    let broker = || {
        let out = run_ok(
            std::process::Command::new("curl")
                .args(["-sf", "-u", "guest:guest"])
                .arg(format!("{}/api/stream/consumers/{VHOST}", node.api_url())),
            "stream consumers",
        );
        let list: serde_json::Value = serde_json::from_str(&out).unwrap();
        list[0]["offset_lag"].as_f64()
    };
    let m = e
        .wait_for("the stream's lag", Duration::from_secs(60), |m| {
            lag(m).is_some_and(|l| l > 0.0) && lag(m) == broker()
        })
        .await;
    assert!(lag(&m) < Some(8.0), "{}: {}", s.name, m.text);
}

/// Without the management API: the classic and quorum queues' depths and consumers from a
/// passive declare; the stream, which a passive declare cannot tell from a queue (it answers
/// what it retains and 0 consumers), skipped with a warning where the broker's Prometheus
/// endpoint lists queue types.
async fn amqp_only(s: &Server, node: &RabbitNode) {
    let e = Exporter::start(&one_source(&format!(
        "{{ name: amqp, kind: rabbitmq, amqp_url: '{}', amqp_queues: [jobs, work, events], prometheus_url: '{}' }}",
        node.amqp_url(VHOST),
        node.prometheus_url()
    )));
    let m = e
        .wait_for("the queues over AMQP", Duration::from_secs(60), |m| {
            ready(m, "jobs") == Some(4.0)
                && ready(m, "work") == Some(2.0)
                && q(m, "work", "pulse_rabbitmq_queue_consumers", &[]) == Some(1.0)
        })
        .await;
    assert_eq!(
        q(&m, "jobs", "pulse_rabbitmq_queue_consumers", &[]),
        Some(0.0)
    );
    // 4.3's endpoint lists queue types (`queue_info`); 4.0's and 3.10's do not, and a stream
    // cannot be told apart there without the management API (docs/compatibility.md).
    if version_key(&s.version) >= vec![4, 3] {
        assert_eq!(ready(&m, "events"), None, "{}: {}", s.name, m.text);
        assert_eq!(
            e.logs().matches("event=rabbitmq.amqp_stream").count(),
            1,
            "{}",
            e.logs()
        );
    }
}

/// Statistics off: 100 waiting in a quorum queue read 100; its consumers, 0 then 1, and its
/// acknowledgements come from the Prometheus endpoint (3.10's gives no acknowledgements with
/// the collector off: absent there, never 0); rates stay absent; the mode is said.
async fn statistics_off(s: &Server, node: &RabbitNode) {
    let (_conn, ch) = channel(node).await;
    declare(&ch, "backlog", &[("x-queue-type", text("quorum"))]).await;
    publish(&ch, "backlog", 100).await;
    let e = Exporter::start(&config(node));
    let m = e
        .wait_for(
            "the backlog with statistics off",
            Duration::from_secs(60),
            |m| {
                ready(m, "backlog") == Some(100.0)
                    && q(m, "backlog", "pulse_rabbitmq_queue_consumers", &[]).is_some()
                    && m.get("pulse_rabbitmq_statistics_enabled", &[]) == Some(0.0)
            },
        )
        .await;
    assert_eq!(
        q(&m, "backlog", "pulse_rabbitmq_queue_consumers", &[]),
        Some(0.0),
        "0 consumers read 0, never absent: {}",
        m.text
    );
    assert!(m.find("pulse_rabbitmq_queue_message_rate", &[]).is_empty());
    let _consumer = consume(node, "backlog", 3).await;
    let acks_given = version_key(&s.version) >= vec![4];
    let m = e
        .wait_for("the consumer and its acks", Duration::from_secs(60), |m| {
            let acked = q(
                m,
                "backlog",
                "pulse_rabbitmq_queue_messages_acked_total",
                &[],
            );
            q(m, "backlog", "pulse_rabbitmq_queue_consumers", &[]) == Some(1.0)
                && ready(m, "backlog") == Some(95.0)
                && (acked == Some(3.0) || !acks_given)
        })
        .await;
    let acked = q(
        &m,
        "backlog",
        "pulse_rabbitmq_queue_messages_acked_total",
        &[],
    );
    assert!(
        acked == Some(3.0) || (!acks_given && acked.is_none()),
        "{acked:?}"
    );
    let logs = e.logs();
    assert_eq!(
        logs.matches("management statistics are off").count(),
        1,
        "{logs}"
    );
    assert!(!logs.contains("rabbitmq.prometheus_endpoint"), "{logs}");
}

/// Three nodes: a quorum queue with a member on each. One node stopped leaves the queue
/// running with no member to spare; two stopped leave it `minority` (the series
/// PulseRabbitmqQuorumQueueUnavailable reads) and, on Khepri (4.2 on), the metadata store
/// without a majority.
async fn cluster(s: &Server, tmp: &std::path::Path) {
    let seed = s.start_rabbitmq(&tmp.join("seed"), &[]);
    let mut members: Vec<RabbitNode> = ["second", "third"]
        .iter()
        .map(|n| s.start_rabbitmq_beside(&tmp.join(n), &seed))
        .collect();
    for m in &members {
        m.join(&seed);
    }
    let (_conn, ch) = channel_to(&seed, "%2f").await;
    declare(&ch, "replicated", &[("x-queue-type", text("quorum"))]).await;
    publish(&ch, "replicated", 3).await;
    let khepri = version_key(&s.version) >= vec![4, 2];
    let e = Exporter::start(&one_source(&format!(
        "{{ name: cluster, kind: rabbitmq, management_url: '{}', username: guest, password: guest }}",
        seed.api_url()
    )));
    let state = |m: &Scrape, state: &str| {
        m.get(
            "pulse_rabbitmq_queue_info",
            &[
                ("queue", "replicated"),
                ("type", "quorum"),
                ("state", state),
            ],
        )
    };
    let critical =
        |m: &Scrape, what: &str| m.get("pulse_rabbitmq_quorum_critical", &[("what", what)]);
    let store = |m: &Scrape| m.get("pulse_rabbitmq_metadata_store_quorum", &[]);
    let m = e
        .wait_for("three nodes running", Duration::from_secs(60), |m| {
            m.sum("pulse_rabbitmq_node_running", &[]) == 3.0
                && state(m, "running") == Some(1.0)
                && critical(m, "quorum_queue") == Some(0.0)
        })
        .await;
    assert_eq!(store(&m), khepri.then_some(1.0), "{}: {}", s.name, m.text);
    let third = members.pop().unwrap();
    let third_name = third.name.clone();
    drop(third);
    let m = e
        .wait_for("one member stopped", Duration::from_secs(60), |m| {
            m.get("pulse_rabbitmq_node_running", &[("node", &third_name)]) == Some(0.0)
                && state(m, "running") == Some(1.0)
                && critical(m, "quorum_queue") == Some(1.0)
        })
        .await;
    assert_eq!(store(&m), khepri.then_some(1.0), "{}: {}", s.name, m.text);
    if khepri {
        assert_eq!(critical(&m, "metadata_store"), Some(1.0), "{}", m.text);
    }
    drop(members.pop());
    let m = e
        .wait_for("two members stopped", Duration::from_secs(60), |m| {
            m.sum("pulse_rabbitmq_node_running", &[]) == 1.0 && state(m, "minority") == Some(1.0)
        })
        .await;
    assert_eq!(store(&m), khepri.then_some(0.0), "{}: {}", s.name, m.text);
    assert_eq!(state(&m, "running"), None, "{}", m.text);
}

/// A consumer over the stream protocol that subscribes to `stream` of `vhost` from its first
/// message with a credit of one chunk, and never grants more: the rest is its lag.
/// Only the frames a subscription needs (peer properties, PLAIN authentication, tune, open,
/// subscribe), as the protocol's specification (`PROTOCOL.adoc` of `rabbitmq_stream`) lays
/// them out; the connection is held open until the returned stream is dropped.
async fn stream_consumer(node: &RabbitNode, vhost: &str, stream: &str) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    fn string(s: &str) -> Vec<u8> {
        [&(s.len() as i16).to_be_bytes()[..], s.as_bytes()].concat()
    }
    async fn send(c: &mut tokio::net::TcpStream, key: u16, body: &[u8]) {
        let head = [key.to_be_bytes(), 1u16.to_be_bytes()].concat();
        let size = (head.len() + body.len()) as u32;
        c.write_all(&[&size.to_be_bytes()[..], &head, body].concat())
            .await
            .unwrap();
    }
    /// The next frame's key and body (after key and version).
    async fn frame(c: &mut tokio::net::TcpStream) -> (u16, Vec<u8>) {
        let size = c.read_u32().await.unwrap() as usize;
        let mut f = vec![0; size];
        c.read_exact(&mut f).await.unwrap();
        (u16::from_be_bytes([f[0], f[1]]), f[4..].to_vec())
    }
    /// Waits for the response `key`, failing on any response code but OK (1).
    async fn ok(c: &mut tokio::net::TcpStream, key: u16) {
        let (k, body) = frame(c).await;
        assert_eq!(
            k, key,
            "stream protocol: {k:#x} instead of {key:#x}: {body:?}"
        );
        assert_eq!(&body[4..6], &[0, 1], "stream protocol {key:#x}: {body:?}");
    }
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", node.stream))
        .await
        .unwrap();
    let props = [
        &1u32.to_be_bytes()[..],
        &1i32.to_be_bytes(),
        &string("product"),
        &string("pulse-matrix"),
    ]
    .concat();
    send(&mut c, 0x0011, &props).await;
    ok(&mut c, 0x8011).await;
    send(&mut c, 0x0012, &2u32.to_be_bytes()).await;
    ok(&mut c, 0x8012).await;
    let plain = b"\0guest\0guest";
    let auth = [
        &3u32.to_be_bytes()[..],
        &string("PLAIN"),
        &(plain.len() as i32).to_be_bytes(),
        plain,
    ]
    .concat();
    send(&mut c, 0x0013, &auth).await;
    ok(&mut c, 0x8013).await;
    // The server proposes its frame size and heartbeat; the client answers with the same.
    let (key, tune) = frame(&mut c).await;
    assert_eq!(key, 0x0014);
    send(&mut c, 0x0014, &tune).await;
    send(
        &mut c,
        0x0015,
        &[&4u32.to_be_bytes()[..], &string(vhost)].concat(),
    )
    .await;
    ok(&mut c, 0x8015).await;
    // Subscription 1 from `first` (1), a credit of 1, no properties.
    let subscribe = [
        &5u32.to_be_bytes()[..],
        &[1],
        &string(stream),
        &1u16.to_be_bytes(),
        &1u16.to_be_bytes(),
        &0i32.to_be_bytes(),
    ]
    .concat();
    send(&mut c, 0x0007, &subscribe).await;
    ok(&mut c, 0x8007).await;
    c
}
