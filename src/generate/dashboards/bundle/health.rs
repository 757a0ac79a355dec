//! Platform health: the exporters, then one row per source kind following the Hayon
//! checklist (MongoDB, Redis, RabbitMQ workers, Stripe webhooks, S3 uploads) plus Postgres and
//! log files: up, probe latency, failure reasons, key numbers; the checks table last.

use serde_json::{json, Value};

use super::super::board::{stat_options, Board};
use super::super::fields::{
    by_query, cell, coloured, column, mapped, merge, organize, sort_by, steps, unit, value_map,
};
use super::super::panel::{guarded, line};
use super::{
    by, check_ok, eq, or_zero_where, over, over_with, probe_latency, sel, sel_with, source_ok,
};
use crate::generate::style::{self, STYLE};

/// The labels a per-source table keeps.
const SOURCE: &str = "platform, instance, source";

/// `aggregation by (platform, instance, source) (metric)`.
fn per_source(aggregation: &str, metric: &str) -> String {
    format!("{aggregation} by ({SOURCE}) ({})", sel(metric))
}

/// Colour steps from green, for a table column.
fn from_green(steps_after: &[(&str, Value)]) -> Value {
    let mut all = vec![("green", Value::Null)];
    all.extend(steps_after.iter().cloned());
    steps(&all)
}

/// The exporters and the TLS certificates.
fn exporters(b: &mut Board) {
    b.row("Exporters");
    b.table(
        "Exporters",
        "Each pulse-exporter: scraped (up), its version, whether its last config (re)load succeeded and when a config was last applied.",
        "short",
        vec![
            format!(
                "max by (platform, instance) ({})",
                sel_with("up", &[eq("job", "pulse-exporter")])
            ),
            format!("max by (platform, instance, version) ({})", sel("pulse_build_info")),
            format!(
                "max by (platform, instance) ({})",
                sel("pulse_config_last_reload_successful")
            ),
            format!(
                "max by (platform, instance) ({}) * 1000",
                sel("pulse_config_last_reload_success_timestamp_seconds")
            ),
        ],
    )
    .size(24, 6)
    .alerts(&["PulseExporterDown", "PulseConfigReloadFailed"])
    .transformations(vec![
        merge(),
        organize(
            &[
                ("Value #A", "scraped"),
                ("Value #C", "config reload"),
                ("Value #D", "config applied"),
            ],
            &["Value #B"],
            &[],
        ),
    ])
    .overrides(vec![
        column("scraped", &[mapped(vec![STYLE.up.clone()]), cell("color-background")]),
        column("config reload", &[mapped(vec![STYLE.ok.clone()]), cell("color-background")]),
        column("config applied", &[unit("dateTimeAsIso")]),
    ]);
    let day = 86400;
    b.table(
        "TLS certificates",
        "Time left before the first certificate of each chain expires: the chain every source's TLS endpoint presents (read every 10 minutes by a handshake of the exporter's own), and the one this exporter serves /metrics with. The alerts warn under 14 days; an expired certificate refuses every new connection.",
        "s",
        vec![format!(
            "min by (platform, instance, source, endpoint) ({}) - time() or label_replace(min by (platform, instance) ({}) - time(), \"source\", \"(this exporter's /metrics)\", \"\", \"\")",
            sel("pulse_tls_certificate_expiry_timestamp_seconds"),
            sel("pulse_web_tls_certificate_expiry_timestamp_seconds")
        )],
    )
    .size(24, 6)
    .alerts(&["PulseSourceCertificateExpiring", "PulseExporterCertificateExpiring"])
    .transformations(vec![
        organize(
            &[("Value", "expires in")],
            &[],
            &["platform", "instance", "source", "endpoint", "expires in"],
        ),
        sort_by("expires in", false),
    ])
    .overrides(vec![column(
        "expires in",
        &[
            unit("s"),
            coloured(steps(&[
                ("red", Value::Null),
                ("orange", json!(14 * day)),
                ("green", json!(30 * day)),
            ])),
            cell("color-background"),
        ],
    )]);
}

/// The row every source kind starts with: up, probe latency, failures by reason.
fn common(b: &mut Board, kind: &str, label: &str) {
    b.row(label);
    super::up_stat(b, kind);
    b.ts(
        &format!("{kind} probe latency"),
        &format!("Duration of the last health probe of each {kind} source. The alert reads the 90th percentile over 15 minutes against 2 s."),
        "s",
        vec![line(
            sel_with("pulse_source_probe_duration_seconds", &[eq("kind", kind)]),
            "{{platform}} {{source}}",
        )],
    )
    .size(9, 6)
    .alerts(&["PulseSourceSlow"])
    .thresholds(probe_latency());
    b.ts(
        &format!("{kind} failures by reason"),
        &format!("Failed health probes of {kind} sources per interval, by reason (connect, timeout, auth, query, …)."),
        "short",
        vec![line(
            format!(
                "sum by (platform, source, reason) ({})",
                over_with("increase", "pulse_source_probe_failures_total", &[eq("kind", kind)])
            ),
            "{{platform}} {{source}} {{reason}}",
        )],
    )
    .size(9, 6)
    .thresholds(steps(&[("green", Value::Null), ("red", json!(1))]));
}

/// The Postgres row.
fn postgres(b: &mut Board) {
    common(b, "postgres", "Postgres");
    b.ts(
        "Postgres connections by state",
        "Client connections by state, against max_connections (the alert fires above 80 % of it).",
        "short",
        vec![
            line(
                format!(
                    "sum by (platform, source, state) ({})",
                    sel("pulse_postgres_connections")
                ),
                "{{platform}} {{source}} {{state}}",
            ),
            line(
                sel("pulse_postgres_max_connections"),
                "{{platform}} {{source}} max",
            ),
        ],
    )
    .alerts(&["PulsePostgresConnectionsNearMax"]);
    b.ts(
        "Postgres database size",
        "Size of the database each source connects to.",
        style::unit_of("pulse_postgres_database_size_bytes"),
        vec![line(
            sel("pulse_postgres_database_size_bytes"),
            "{{platform}} {{source}} {{database}}",
        )],
    );
    postgres_vitals(b);
}

/// Postgres replication and vitals, one row per source.
fn postgres_vitals(b: &mut Board) {
    let in_recovery = "pulse_postgres_in_recovery";
    b.table(
        "Postgres replication and vitals",
        "Per source: standby or primary, streaming standbys (on a primary), the worst replication lag (the standby's own, else its primary's view; 0 without replication), inactive replication slots and the WAL slots retain, the database nearest transaction-ID wraparound, sessions waiting on locks, deadlocks in the range, and when the server started.",
        "short",
        vec![
            per_source("max", in_recovery),
            format!(
                "{} or -1 + 0 * {}",
                per_source("max", "pulse_postgres_streaming_standbys"),
                per_source("max", in_recovery)
            ),
            or_zero_where(
                format!(
                    "{} or {}",
                    per_source("max", "pulse_postgres_replication_lag_seconds"),
                    per_source("max", "pulse_postgres_standby_replay_lag_seconds")
                ),
                in_recovery,
            ),
            or_zero_where(
                format!(
                    "count by ({SOURCE}) ({} == 0)",
                    sel("pulse_postgres_replication_slot_active")
                ),
                in_recovery,
            ),
            or_zero_where(
                per_source("sum", "pulse_postgres_replication_slot_retained_wal_bytes"),
                in_recovery,
            ),
            per_source("max", "pulse_postgres_database_wraparound_ratio"),
            per_source("max", "pulse_postgres_lock_waiting_sessions"),
            format!(
                "sum by ({SOURCE}) ({})",
                over("increase", "pulse_postgres_deadlocks_total")
            ),
            format!("{} * 1000", per_source("max", "pulse_postgres_start_timestamp_seconds")),
        ],
    )
    .size(24, 6)
    .alerts(&[
        "PulsePostgresReplicationStopped",
        "PulsePostgresReplicationLag",
        "PulsePostgresReplicationSlotInactive",
        "PulsePostgresTxidWraparound",
        "PulsePostgresLockWaits",
        "PulsePostgresDeadlocks",
        "PulsePostgresRestarted",
    ])
    .transformations(vec![
        merge(),
        organize(
            &[
                ("Value #A", "role"),
                ("Value #B", "streaming standbys"),
                ("Value #C", "replication lag"),
                ("Value #D", "inactive slots"),
                ("Value #E", "WAL retained by slots"),
                ("Value #F", "wraparound used"),
                ("Value #G", "waiting on locks"),
                ("Value #H", "deadlocks"),
                ("Value #I", "started"),
            ],
            &[],
            &[],
        ),
    ])
    .overrides(postgres_vitals_columns());
}

/// The Postgres vitals table's columns: role, lag, slots, wraparound, deadlocks, start.
fn postgres_vitals_columns() -> Vec<Value> {
    vec![
        column(
            "role",
            &[
                mapped(vec![value_map(&[
                    ("0", "primary", "blue"),
                    ("1", "standby", "purple"),
                ])]),
                cell("color-text"),
            ],
        ),
        column(
            "streaming standbys",
            &[mapped(vec![value_map(&[("-1", "n/a (standby)", "")])])],
        ),
        column(
            "replication lag",
            &[
                unit("s"),
                coloured(from_green(&[("orange", json!(60)), ("red", json!(300))])),
                cell("color-text"),
            ],
        ),
        column(
            "inactive slots",
            &[
                coloured(from_green(&[("orange", json!(1))])),
                cell("color-text"),
            ],
        ),
        column("WAL retained by slots", &[unit("bytes")]),
        column(
            "wraparound used",
            &[
                unit("percentunit"),
                coloured(from_green(&[("orange", json!(0.25)), ("red", json!(0.5))])),
                cell("color-text"),
            ],
        ),
        column(
            "deadlocks",
            &[
                coloured(from_green(&[("orange", json!(1))])),
                cell("color-text"),
            ],
        ),
        column("started", &[unit("dateTimeAsIso")]),
    ]
}

/// The MongoDB row.
fn mongodb(b: &mut Board) {
    common(b, "mongodb", "MongoDB");
    b.ts(
        "MongoDB connections",
        "Current connections and connections still available (the alert fires when under 10 % remain available).",
        "short",
        vec![line(sel("pulse_mongodb_connections"), "{{platform}} {{source}} {{state}}")],
    )
    .w(24)
    .alerts(&["PulseMongodbConnectionsLow"]);
    let member = |metric: &str| {
        format!(
            "max by (platform, instance, source, set, member) ({})",
            sel(metric)
        )
    };
    b.table(
        "MongoDB replica set members",
        "From replSetGetStatus: each member's state (1 primary, 2 secondary, 7 arbiter; anything else serves nothing), whether it is up as the server sees it, and each secondary's lag behind the primary. Empty for a standalone server.",
        "short",
        vec![
            member("pulse_mongodb_replset_member_state"),
            member("pulse_mongodb_replset_member_health"),
            member("pulse_mongodb_replset_member_lag_seconds"),
        ],
    )
    .size(24, 6)
    .alerts(&[
        "PulseMongodbReplicaSetNoPrimary",
        "PulseMongodbReplicaSetMemberUnhealthy",
        "PulseMongodbReplicationLag",
    ])
    .transformations(vec![
        merge(),
        organize(
            &[("Value #A", "state"), ("Value #B", "health"), ("Value #C", "lag")],
            &[],
            &[],
        ),
    ])
    .overrides(vec![
        column(
            "state",
            &[
                mapped(vec![value_map(&[
                    ("1", "PRIMARY", "green"),
                    ("2", "SECONDARY", "green"),
                    ("7", "ARBITER", "blue"),
                    ("8", "DOWN", "red"),
                ])]),
                cell("color-text"),
            ],
        ),
        column("health", &[mapped(vec![STYLE.up.clone()]), cell("color-background")]),
        column(
            "lag",
            &[
                unit("s"),
                coloured(from_green(&[("orange", json!(10)), ("red", json!(60))])),
                cell("color-text"),
            ],
        ),
    ]);
}

/// The Redis row.
fn redis(b: &mut Board) {
    common(b, "redis", "Redis");
    b.ts(
        "Redis memory",
        "Memory used, against maxmemory (0 = no limit, not drawn).",
        style::unit_of("pulse_redis_memory_used_bytes"),
        vec![
            line(
                sel("pulse_redis_memory_used_bytes"),
                "{{platform}} {{source}} used",
            ),
            line(
                format!("{} > 0", sel("pulse_redis_memory_max_bytes")),
                "{{platform}} {{source}} max",
            ),
        ],
    )
    .alerts(&["PulseRedisMemoryNearMax"]);
    b.ts(
        "Redis clients",
        "Connected and blocked clients.",
        "short",
        vec![
            line(
                sel("pulse_redis_connected_clients"),
                "{{platform}} {{source}} connected",
            ),
            line(
                sel("pulse_redis_blocked_clients"),
                "{{platform}} {{source}} blocked",
            ),
        ],
    );
    redis_instances(b);
    redis_replication(b);
}

/// Each Redis instance: role, version, memory against its limit, evictions.
fn redis_instances(b: &mut Board) {
    b.table(
        "Redis instances",
        "Each Redis: its maxmemory policy, memory used and maxmemory (0 = no limit), connected clients, and keys evicted per second (red: on a Redis that holds queues or heartbeats evictions lose work).",
        "short",
        vec![
            format!(
                "max by (platform, instance, source, policy) ({})",
                sel("pulse_redis_maxmemory_policy")
            ),
            per_source("max", "pulse_redis_memory_used_bytes"),
            per_source("max", "pulse_redis_memory_max_bytes"),
            per_source("max", "pulse_redis_connected_clients"),
            format!("sum by ({SOURCE}) ({})", over("rate", "pulse_redis_evicted_keys_total")),
        ],
    )
    .size(24, 6)
    .alerts(&["PulseRedisEvictingKeys", "PulseRedisMemoryNearMax"])
    .transformations(vec![
        merge(),
        organize(
            &[
                ("policy", "maxmemory policy"),
                ("Value #B", "memory used"),
                ("Value #C", "maxmemory"),
                ("Value #D", "clients"),
                ("Value #E", "evicted keys / s"),
            ],
            &["Value #A"],
            &[],
        ),
    ])
    .overrides(redis_instance_columns());
}

/// Redis replication and persistence, and the keyspace hit ratio.
fn redis_replication(b: &mut Board) {
    let increase = |metric: &str| format!("sum by ({SOURCE}) ({})", over("increase", metric));
    let hits = increase("pulse_redis_keyspace_hits_total");
    let misses = increase("pulse_redis_keyspace_misses_total");
    b.table(
        "Redis replication and persistence",
        "Per Redis: master or replica, the replica's link to its master, replicas connected, whether the last RDB save succeeded (red: with stop-writes-on-bgsave-error writes are refused), the last successful save, writes since, and the keyspace hit ratio over the range.",
        "short",
        vec![
            per_source("max", "pulse_redis_replica"),
            format!(
                "{} or -1 + 0 * {}",
                per_source("max", "pulse_redis_master_link_up"),
                per_source("max", "pulse_redis_replica")
            ),
            per_source("max", "pulse_redis_connected_replicas"),
            per_source("min", "pulse_redis_rdb_last_bgsave_success"),
            format!("{} * 1000", per_source("max", "pulse_redis_rdb_last_save_timestamp_seconds")),
            per_source("max", "pulse_redis_rdb_changes_since_last_save"),
            or_zero_where(
                format!("{hits} / ({hits} + {misses} > 0)"),
                "pulse_redis_replica",
            ),
        ],
    )
    .size(24, 6)
    .alerts(&[
        "PulseRedisReplicationBroken",
        "PulseRedisPersistenceFailing",
        "PulseRedisBackupStale",
    ])
    .transformations(vec![
        merge(),
        organize(
            &[
                ("Value #A", "role"),
                ("Value #B", "master link"),
                ("Value #C", "replicas"),
                ("Value #D", "last save ok"),
                ("Value #E", "last save"),
                ("Value #F", "writes since"),
                ("Value #G", "hit ratio"),
            ],
            &[],
            &[],
        ),
    ])
    .overrides(redis_replication_columns());
}

/// The Redis instances table's columns.
fn redis_instance_columns() -> Vec<Value> {
    vec![
        column("memory used", &[unit("bytes")]),
        column("maxmemory", &[unit("bytes")]),
        column(
            "evicted keys / s",
            &[
                unit("short"),
                coloured(from_green(&[("red", json!(0.000001))])),
                cell("color-background"),
            ],
        ),
    ]
}

/// The Redis replication table's columns.
fn redis_replication_columns() -> Vec<Value> {
    vec![
        column(
            "role",
            &[
                mapped(vec![value_map(&[
                    ("0", "master", "blue"),
                    ("1", "replica", "purple"),
                ])]),
                cell("color-text"),
            ],
        ),
        column(
            "master link",
            &[
                mapped(vec![value_map(&[
                    ("-1", "n/a (master)", ""),
                    ("1", "UP", "green"),
                    ("0", "DOWN", "red"),
                ])]),
                cell("color-text"),
            ],
        ),
        column(
            "last save ok",
            &[mapped(vec![STYLE.ok.clone()]), cell("color-background")],
        ),
        column("last save", &[unit("dateTimeAsIso")]),
        column("hit ratio", &[unit("percentunit")]),
    ]
}

/// The RabbitMQ row.
fn rabbitmq(b: &mut Board) {
    common(b, "rabbitmq", "RabbitMQ workers");
    b.ts(
        "RabbitMQ messages by vhost",
        "Ready and unacked messages in each vhost's selected queues.",
        "short",
        vec![line(
            format!(
                "sum by (platform, source, vhost, state) ({})",
                sel("pulse_rabbitmq_vhost_messages")
            ),
            "{{platform}} {{vhost}} {{state}}",
        )],
    )
    .w(9);
    b.ts(
        "RabbitMQ consumers",
        "Consumers per queue: a queue with messages and 0 consumers means its workers are down.",
        "short",
        vec![line(
            format!(
                "sum by (platform, queue) ({})",
                sel_with(
                    "pulse_rabbitmq_queue_consumers",
                    &[eq("dead_letter", "false")]
                )
            ),
            "{{platform}} {{queue}}",
        )],
    )
    .w(9)
    .alerts(&["PulseQueueNotDraining"]);
    let alarms = format!(
        "max by ({}) ({})",
        by(&["node", "alarm"]),
        sel("pulse_rabbitmq_node_alarm")
    );
    b.add(
        "stat",
        "RabbitMQ node alarms",
        "A memory or disk alarm on a broker node blocks every publisher: ALARM in red while one is raised.",
        "none",
        vec![json!({"expr": style::guard(&alarms, &source_ok("rabbitmq"), "instance"),
                    "instant": true, "legendFormat": "{{node}} {{alarm}}"})],
    )
    .size(6, 8)
    .alerts(&["PulseRabbitmqNodeAlarm"])
    .mappings(vec![
        value_map(&[("0", "OK", "green"), ("1", "ALARM", "red")]),
        STYLE.degraded.clone(),
    ])
    .options(stat_options("background", "none", "value_and_name"));
    rabbitmq_majority(b);
    rabbitmq_nodes(b);
    rabbitmq_connections(b);
}

/// Whether each RabbitMQ cluster's metadata store (Khepri, 4.2 on) has a majority of its
/// nodes running.
fn rabbitmq_majority(b: &mut Board) {
    let store = format!(
        "max by ({}) ({})",
        by(&["source"]),
        sel("pulse_rabbitmq_metadata_store_quorum")
    );
    b.add(
        "stat",
        "RabbitMQ metadata store",
        "Whether a majority of each cluster's nodes run, as the node the exporter reads sees them (the Khepri metadata store, RabbitMQ 4.2 on): NO MAJORITY in red while nothing can be declared or deleted. No data before 4.2 (Mnesia: the nodes table's partitions say it).",
        "none",
        vec![json!({"expr": style::guard(&store, &source_ok("rabbitmq"), "instance"),
                    "instant": true, "legendFormat": "{{source}}"})],
    )
    .size(6, 8)
    .alerts(&["PulseRabbitmqMetadataStoreNoQuorum"])
    .mappings(vec![
        value_map(&[("1", "MAJORITY", "green"), ("0", "NO MAJORITY", "red")]),
        STYLE.degraded.clone(),
    ])
    .options(stat_options("background", "none", "value_and_name"));
}

/// Each RabbitMQ node: its resources against their limits.
fn rabbitmq_nodes(b: &mut Board) {
    let share = |resource: &str| {
        let pick = [eq("resource", resource)];
        format!(
            "max by (platform, instance, source, node) ({} / ({} > 0))",
            sel_with("pulse_rabbitmq_node_resource_used", &pick),
            sel_with("pulse_rabbitmq_node_resource_limit", &pick)
        )
    };
    b.table(
        "RabbitMQ nodes",
        "Per node: running, nodes it cannot reach (a partition when above 0), and its file descriptors and sockets as a share of their limits (at the limit it refuses connections).",
        "short",
        vec![
            format!(
                "max by (platform, instance, source, node) ({})",
                sel("pulse_rabbitmq_node_running")
            ),
            format!(
                "max by (platform, instance, source, node) ({})",
                sel("pulse_rabbitmq_node_partitions")
            ),
            share("file_descriptors"),
            share("sockets"),
        ],
    )
    .size(12, 6)
    .alerts(&[
        "PulseRabbitmqNodeDown",
        "PulseRabbitmqNetworkPartition",
        "PulseRabbitmqResourceNearLimit",
    ])
    .transformations(vec![
        merge(),
        organize(
            &[
                ("Value #A", "running"),
                ("Value #B", "partitioned from"),
                ("Value #C", "file descriptors"),
                ("Value #D", "sockets"),
            ],
            &[],
            &[],
        ),
    ])
    .overrides(rabbitmq_node_columns());
}

/// RabbitMQ connections and unroutable messages.
fn rabbitmq_connections(b: &mut Board) {
    let connections = format!(
        "max by (platform, source) ({})",
        sel("pulse_rabbitmq_connections")
    );
    b.ts(
        "RabbitMQ connections and unroutable messages",
        "Client connections to each broker, and messages per interval that no queue received (dropped or returned: lost work; 0 when none).",
        "short",
        vec![
            line(connections.clone(), "{{platform}} {{source}} connections"),
            line(
                format!(
                    "sum by (platform, source) ({}) or 0 * {connections}",
                    over("increase", "pulse_rabbitmq_unroutable_messages_total")
                ),
                "{{platform}} {{source}} unroutable",
            ),
        ],
    )
    .size(12, 6)
    .alerts(&["PulseRabbitmqUnroutableMessages"]);
}

/// The RabbitMQ nodes table's columns: units, and colours where a share nears its limit.
fn rabbitmq_node_columns() -> Vec<Value> {
    vec![
        column(
            "running",
            &[mapped(vec![STYLE.up.clone()]), cell("color-background")],
        ),
        column(
            "partitioned from",
            &[
                coloured(from_green(&[("red", json!(1))])),
                cell("color-background"),
            ],
        ),
        column(
            "file descriptors",
            &[
                unit("percentunit"),
                coloured(from_green(&[("orange", json!(0.8)), ("red", json!(0.9))])),
                cell("color-text"),
            ],
        ),
        column(
            "sockets",
            &[
                unit("percentunit"),
                coloured(from_green(&[("orange", json!(0.8)), ("red", json!(0.9))])),
                cell("color-text"),
            ],
        ),
    ]
}

/// What a Stripe number is kept by: the exporter, the source and the account.
const STRIPE_KEYS: &str = "platform, instance, source, account";

/// The Stripe row.
fn stripe(b: &mut Board) {
    common(b, "stripe", "Stripe webhooks");
    let endpoints_ok = check_ok(&["webhook_endpoints.*"]);
    b.add(
        "stat",
        "Stripe webhook endpoints",
        "1 (enabled) or 0 (disabled) per webhook endpoint; a disabled endpoint receives nothing.",
        "none",
        vec![json!({
            "expr": style::guard(&sel("pulse_stripe_webhook_endpoint_enabled"), &endpoints_ok, "instance"),
            "instant": true, "legendFormat": "{{host}} {{endpoint}}",
        })],
    )
    .size(24, 6)
    .alerts(&["PulseStripeWebhookEndpointDisabled"])
    .mappings(vec![
        value_map(&[("1", "ENABLED", "green"), ("0", "DISABLED", "red")]),
        STYLE.degraded.clone(),
    ])
    .options(stat_options("background", "none", "value_and_name"));
    b.number(
        "Stripe webhook endpoints left",
        "Enabled webhook endpoints per account. An endpoint deleted (not disabled) shows only here, as a drop; the alert compares with the last hour.",
        "none",
        vec![guarded(
            &format!(
                "sum by ({STRIPE_KEYS}) ({})",
                sel_with("pulse_stripe_webhook_endpoints", &[eq("status", "enabled")])
            ),
            "{{source}} {{account}}",
            &endpoints_ok,
        )],
    )
    .size(4, 6)
    .thresholds(steps(&[("red", Value::Null), ("green", json!(1))]))
    .color_mode("background")
    .alerts(&["PulseStripeWebhookEndpointDeleted"]);
    // A Stripe series that is absent when there is nothing to count: 0 for every account
    // whose events check runs, so a card reads 0 instead of "No data".
    stripe_deliveries(b);
}

/// Stripe deliveries: the oldest undelivered event, abandoned events, stuck deliveries.
fn stripe_deliveries(b: &mut Board) {
    let or_zero = |expr: String| {
        format!(
            "{expr}\nor on (instance, source, account) 0 * sum by ({STRIPE_KEYS}) ({})",
            sel("pulse_stripe_events")
        )
    };
    let undelivered_ok = check_ok(&["undelivered_events.*"]);
    b.number(
        "Stripe oldest undelivered event",
        "Age of the oldest event not yet delivered to every endpoint (0 when none). Past stuck_after (15 min by default) it is stuck: red.",
        "s",
        vec![guarded(
            &or_zero(format!(
                "max by ({STRIPE_KEYS}) (time() - {})",
                sel("pulse_stripe_oldest_undelivered_event_timestamp_seconds")
            )),
            "{{source}} {{account}}",
            &undelivered_ok,
        )],
    )
    .size(4, 6)
    .thresholds(steps(&[("green", Value::Null), ("red", json!(900))]))
    .color_mode("background")
    .alerts(&["PulseStripeWebhookDeliveriesStuck"]);
    b.number(
        "Stripe abandoned events",
        "Events Stripe stopped retrying (past retry_horizon, 72h, or due at an endpoint since disabled or deleted) that never reached every endpoint. They stay here until resent or acknowledged in the config, up to 30 days: red while any.",
        "short",
        vec![guarded(
            &or_zero(format!(
                "sum by ({STRIPE_KEYS}) ({})",
                sel("pulse_stripe_abandoned_events")
            )),
            "{{source}} {{account}}",
            &undelivered_ok,
        )],
    )
    .size(4, 6)
    .thresholds(steps(&[("green", Value::Null), ("red", json!(1))]))
    .color_mode("background")
    .alerts(&["PulseStripeWebhookEventsAbandoned"]);
    b.ts(
        "Stripe stuck deliveries",
        "Events not delivered to every webhook endpoint for longer than stuck_after, by type (the alert reads these), those Stripe gave up on, and all undelivered events Stripe still retries, in flight included (above 0 on a busy account).",
        "short",
        vec![
            line(
                format!("sum by (event_type) ({})", sel("pulse_stripe_stuck_events")),
                "stuck {{event_type}}",
            ),
            line(
                format!("sum by (event_type) ({})", sel("pulse_stripe_abandoned_events")),
                "abandoned {{event_type}}",
            ),
            line(
                format!("sum({})", sel("pulse_stripe_undelivered_events")),
                "undelivered, in flight included",
            ),
            line(format!("sum({})", sel("pulse_stripe_events")), "all events in the window"),
        ],
    )
    .size(12, 6)
    .alerts(&["PulseStripeWebhookDeliveriesStuck", "PulseStripeWebhookEventsAbandoned"]);
}

/// The S3 and log file rows.
fn s3_and_logs(b: &mut Board) {
    common(b, "s3", "S3 media uploads");
    b.ts(
        "S3 canary steps",
        "1 when the canary's put, get (read back and compared) and delete worked in its last run.",
        "bool",
        vec![line(sel("pulse_s3_canary_success"), "{{bucket}} {{step}}")],
    )
    .alerts(&["PulseS3CanaryFailing"]);
    b.ts(
        "S3 canary duration",
        "Duration of each canary step.",
        style::unit_of("pulse_s3_canary_duration_seconds"),
        vec![line(
            sel("pulse_s3_canary_duration_seconds"),
            "{{bucket}} {{step}}",
        )],
    );
    common(b, "logfile", "Log files");
    b.ts(
        "Log lines",
        "Lines read per interval, parsed (JSON) or invalid. A file that stops growing while its source is up alerts.",
        "short",
        vec![line(
            format!(
                "sum by (platform, source, result) ({})",
                over("increase", "pulse_logfile_lines_total")
            ),
            "{{platform}} {{source}} {{result}}",
        )],
    )
    .w(8)
    .alerts(&["PulseLogFileSilent"]);
    b.ts(
        "AI events (ai-events.log)",
        "AI events per second in the log by status, and the 90th percentile of the latency the log reports (right).",
        "short",
        vec![
            line(
                format!("sum by (status) ({})", over("rate", "app_ai_log_events_total")),
                "{{status}} / s",
            ),
            line(
                format!(
                    "histogram_quantile(0.9, sum by (le) ({}))",
                    over("rate", "app_ai_log_latency_seconds_bucket")
                ),
                "p90 latency",
            ),
        ],
    )
    .w(8)
    .overrides(vec![by_query(
        "B",
        &[("unit", json!("s")), ("custom.axisPlacement", json!("right"))],
    )]);
    b.ts(
        "Preview builds (preview.log)",
        "Preview builds per second in the log by status.",
        "short",
        vec![line(
            format!(
                "sum by (status) ({})",
                over("rate", "app_preview_log_events_total")
            ),
            "{{status}} / s",
        )],
    )
    .w(8);
}

/// The checks table.
fn checks(b: &mut Board) {
    b.row("Checks");
    let per_check = |metric: &str| {
        format!(
            "max by (platform, instance, source, check) ({})",
            sel(metric)
        )
    };
    b.table(
        "Checks",
        "Every check: OK when its last run succeeded, FAILING when not, with its duration and the series it serves.",
        "short",
        vec![
            per_check("pulse_check_success"),
            per_check("pulse_check_duration_seconds"),
            per_check("pulse_check_series"),
        ],
    )
    .size(24, 10)
    .alerts(&["PulseCheckFailing"])
    .transformations(vec![
        merge(),
        organize(
            &[("Value #A", "ok"), ("Value #B", "duration"), ("Value #C", "series")],
            &[],
            &[],
        ),
    ])
    .overrides(vec![
        column("ok", &[mapped(vec![STYLE.ok.clone()]), cell("color-background")]),
        column("duration", &[unit("s")]),
    ]);
}

/// The platform health dashboard.
pub(super) fn board() -> Board {
    let mut b = Board::new(
        "pulse-platform-health",
        "Platform health",
        "The exporters, then one row per source kind following the Hayon checklist (MongoDB, Redis, RabbitMQ workers, Stripe webhooks, S3 uploads) plus Postgres and log files: up, probe latency, failure reasons, key numbers.",
    );
    exporters(&mut b);
    postgres(&mut b);
    mongodb(&mut b);
    redis(&mut b);
    rabbitmq(&mut b);
    stripe(&mut b);
    s3_and_logs(&mut b);
    checks(&mut b);
    b
}
