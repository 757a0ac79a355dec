//! Queues and workers: queue depth, the age of the oldest waiting job, consumers, dead
//! letters, job latency and completions; worker pools and their heartbeats; jobs that report
//! in.

use serde_json::{json, Value};

use super::super::board::{stat_options, Board};
use super::super::fields::{
    by_query, cell, coloured, column, mapped, merge, organize, sort_by, steps, unit, value_map,
};
use super::super::panel::{guarded, guarded_on, line};
use super::{
    at_least_one, by, by_source, check_ok, dead_letters, eq, heartbeat_age, job_age, latency, over,
    over_with, pg_oldest, pool_ok, queue_depth, rabbit_drain, rabbit_oldest, redis_depth,
    redis_oldest, redis_queue_ok, sel, sel_with, source_ok,
};
use crate::generate::style::{self, STYLE};

/// The matchers of a RabbitMQ queue that is not a dead-letter queue, in `state`.
fn live(state: Option<&str>) -> Vec<String> {
    state
        .map(|s| eq("state", s))
        .into_iter()
        .chain([eq("dead_letter", "false")])
        .collect()
}

/// The cards of the queues now.
fn queues(b: &mut Board) {
    b.row("Queues now");
    b.card(
        "Redis queue depth",
        "Jobs waiting in each Redis queue (LLEN; an empty queue has no key and reads 0). Orange from 100, red from 500.",
        "short",
        &redis_depth(None),
        &redis_queue_ok(),
    )
    .size(6, 6)
    .named("{{platform}} {{queue}}")
    .thresholds(queue_depth())
    .alerts(&["PulseJobsNotProcessed"]);
    b.card(
        "Jobs pending (Postgres)",
        "Jobs created and not completed yet in the platform's jobs tables (waiting or running).",
        "short",
        &format!("sum by ({}) ({})", by(&["queue"]), sel("app_jobs_pending")),
        &check_ok(&["app_jobs_pending"]),
    )
    .size(6, 6)
    .named("{{platform}} {{queue}}")
    .thresholds(queue_depth())
    .alerts(&["PulseJobsNotProcessed"]);
    b.number(
        "Oldest waiting job",
        "How long the oldest job of each queue has waited: Redis queues (oldest item), Postgres jobs (oldest pending row) and RabbitMQ queues (head message's timestamp); 0 for an empty queue. Orange from 5 minutes, red from 10 (the alert's threshold).",
        "s",
        vec![
            guarded(&redis_oldest(None), "{{queue}} (Redis)", &redis_queue_ok()),
            guarded(
                &pg_oldest(),
                "{{queue}} (Postgres)",
                &check_ok(&["app_jobs_oldest_pending_timestamp_seconds"]),
            ),
            guarded(&rabbit_oldest(), "{{queue}}", &check_ok(&["queues"])),
        ],
    )
    .thresholds(job_age())
    .color_mode("background")
    .alerts(&["PulseOldestJobTooOld"]);
    let dead = format!(
        "sum by ({}) ({})",
        by(&["vhost", "queue"]),
        sel_with(
            "pulse_rabbitmq_queue_messages",
            &[eq("dead_letter", "true")]
        )
    );
    b.add(
        "stat",
        "Dead letters",
        "Messages in dead-letter queues: work that failed after its retries. Orange from 1, red from 100; the alert fires while they keep increasing.",
        "short",
        vec![json!({"expr": style::guard(&dead, &source_ok("rabbitmq"), "instance"),
                    "instant": true, "legendFormat": "{{queue}}"})],
    )
    .size(6, 6)
    .thresholds(dead_letters())
    .mappings(vec![STYLE.degraded.clone()])
    .alerts(&["PulseDeadLettersIncreasing"])
    .options(stat_options("background", "area", "value_and_name"));
}

/// The queues over time, RabbitMQ's queues, and job latency.
fn queues_over_time(b: &mut Board) {
    b.row("Queues");
    b.ts(
        "Job queue depth",
        "Jobs waiting in the Redis AI and preview queues, and jobs pending (created, not completed) in the Postgres jobs tables.",
        "short",
        vec![
            line(redis_depth(None), "{{platform}} {{queue}} (Redis)"),
            line(
                format!("sum by (platform, queue) ({})", sel("app_jobs_pending")),
                "{{platform}} {{queue}} pending (Postgres)",
            ),
        ],
    )
    .thresholds(queue_depth())
    .alerts(&["PulseJobsNotProcessed"]);
    b.ts(
        "Oldest waiting job over time",
        "Age of the oldest waiting job of each queue (0 when empty), and, for RabbitMQ queues that report no head timestamp (quorum queues), the time their ready messages need to drain at the rate they are acknowledged. The alerts fire past 10 minutes.",
        "s",
        vec![
            line(redis_oldest(None), "{{platform}} {{queue}} (Redis)"),
            line(pg_oldest(), "{{platform}} {{queue}} (Postgres)"),
            line(rabbit_oldest(), "{{platform}} {{queue}}"),
            line(rabbit_drain(), "{{platform}} {{queue}} (drain time)"),
        ],
    )
    .thresholds(job_age())
    .alerts(&["PulseOldestJobTooOld", "PulseQueueDrainTooSlow"]);
    rabbitmq_queues(b);
    queue_flow(b);
}

/// Each RabbitMQ queue now: depth by state, consumers, rates, head age.
fn rabbitmq_queues(b: &mut Board) {
    let qlabels = "platform, instance, source, vhost, queue";
    b.table(
        "RabbitMQ queues",
        "Each queue (dead-letter queues apart): messages ready and delivered but not acknowledged, consumers (red at 0), acknowledgements per second, the age of its oldest ready message (0 when empty; classic queues with stamped messages), the time its ready messages need at the acknowledgement rate of the last 5 minutes (quorum and classic queues; none for streams, whose messages are their retention) and, for a stream, the messages its furthest-behind stream-protocol consumer has yet to read.",
        "short",
        vec![
            format!(
                "sum by ({qlabels}) ({})",
                sel_with("pulse_rabbitmq_queue_messages", &live(Some("ready")))
            ),
            format!(
                "sum by ({qlabels}) ({})",
                sel_with("pulse_rabbitmq_queue_messages", &live(Some("unacked")))
            ),
            format!(
                "max by ({qlabels}) ({})",
                sel_with("pulse_rabbitmq_queue_consumers", &live(None))
            ),
            format!(
                "sum by ({qlabels}) ({})",
                over_with("rate", "pulse_rabbitmq_queue_messages_acked_total", &live(None))
            ),
            rabbit_oldest(),
            format!(
                "max by ({qlabels}) ({})",
                sel_with("pulse_rabbitmq_queue_drain_seconds", &live(None))
            ),
            format!(
                "max by ({qlabels}) ({})",
                sel_with("pulse_rabbitmq_stream_consumer_lag_messages", &live(None))
            ),
        ],
    )
    .size(24, 7)
    .alerts(&[
        "PulseQueueNotDraining",
        "PulseOldestJobTooOld",
        "PulseQueueDrainTooSlow",
    ])
    .transformations(vec![
        merge(),
        organize(
            &[
                ("Value #A", "ready"),
                ("Value #B", "unacked"),
                ("Value #C", "consumers"),
                ("Value #D", "acked / s"),
                ("Value #E", "oldest message"),
                ("Value #F", "drain time"),
                ("Value #G", "stream lag"),
            ],
            &[],
            &[],
        ),
    ])
    .overrides(vec![
        column("ready", &[coloured(queue_depth()), cell("color-text")]),
        column("consumers", &[coloured(at_least_one()), cell("color-background")]),
        column("acked / s", &[unit("short")]),
        column("oldest message", &[unit("s"), coloured(job_age()), cell("color-background")]),
        column("drain time", &[unit("s"), coloured(job_age()), cell("color-background")]),
        column("stream lag", &[unit("short")]),
    ]);
}

/// Queue depth, acknowledgements, consumers and job latency over time.
fn queue_flow(b: &mut Board) {
    b.ts(
        "RabbitMQ queue depth",
        "Ready and unacked messages per queue (dead-letter queues excluded).",
        "short",
        vec![line(
            format!(
                "sum by (platform, queue, state) ({})",
                sel_with("pulse_rabbitmq_queue_messages", &live(None))
            ),
            "{{queue}} {{state}}",
        )],
    )
    .w(8)
    .thresholds(queue_depth())
    .alerts(&["PulseQueueNotDraining"]);
    b.ts(
        "RabbitMQ acknowledged per second",
        "Messages acknowledged per second per queue: a backlog with none acknowledged is not being processed.",
        "short",
        vec![line(
            format!(
                "sum by (platform, queue) ({})",
                over_with("rate", "pulse_rabbitmq_queue_messages_acked_total", &live(None))
            ),
            "{{queue}}",
        )],
    )
    .w(8)
    .alerts(&["PulseQueueNotDraining"]);
    b.ts(
        "Consumers",
        "Consumers attached to each queue.",
        "short",
        vec![line(
            format!(
                "sum by (platform, queue) ({})",
                sel_with("pulse_rabbitmq_queue_consumers", &live(None))
            ),
            "{{queue}}",
        )],
    )
    .w(8);
    b.ts(
        "Job latency and completions",
        "Average seconds from job created to completed, over jobs completed in the last 1 m, 15 m and 1 h (left; orange from 30 s, red from 60 s, the alert's threshold on the 15 m window), and how many completed in each window (right): 0 completions, not a blank chart, when work stops.",
        "s",
        vec![
            line(
                format!("avg by (queue, window) ({})", sel("app_job_latency_avg_seconds")),
                "{{queue}} latency {{window}}",
            ),
            line(
                format!("sum by (queue, window) ({})", sel("app_jobs_completed")),
                "{{queue}} completed {{window}}",
            ),
        ],
    )
    .w(24)
    .thresholds(latency())
    .alerts(&["PulseJobLatencyHigh", "PulseJobsNotProcessed"])
    .overrides(vec![by_query(
        "B",
        &[
            ("unit", json!("short")),
            ("custom.axisPlacement", json!("right")),
            ("custom.lineStyle", json!({"fill": "dash", "dash": [10, 10]})),
        ],
    )]);
}

/// Worker pools, their capacity and each worker's heartbeat.
fn workers(b: &mut Board) {
    b.row("Workers");
    let pool = by_source(&["pool"]);
    let on = "instance, source, pool";
    b.number(
        "Workers up by pool",
        "Workers that beat within max_age, the minimum the pool needs (min_up in the config) and the workers known in each pool.",
        "short",
        vec![
            guarded_on(
                on,
                &format!("sum by ({pool}) ({})", sel("pulse_worker_pool_workers_up")),
                "{{pool}} up",
                &pool_ok(),
            ),
            guarded_on(
                on,
                &format!("sum by ({pool}) ({})", sel("pulse_worker_pool_min_up")),
                "{{pool}} minimum",
                &pool_ok(),
            ),
            guarded_on(
                on,
                &format!("sum by ({pool}) ({})", sel("pulse_worker_pool_workers")),
                "{{pool}} known",
                &pool_ok(),
            ),
        ],
    )
    .size(12, 6)
    .alerts(&["PulseWorkerPoolDown"]);
    b.card_on(
        on,
        "Pool capacity against its minimum",
        "Workers up over the minimum the pool needs (min_up in the config): red under 100 %, when the pool lacks capacity. No value for a pool whose minimum is 0 (it may scale to zero).",
        "percentunit",
        &format!(
            "sum by ({pool}) ({})\n/ (sum by ({pool}) ({}) > 0)",
            sel("pulse_worker_pool_workers_up"),
            sel("pulse_worker_pool_min_up")
        ),
        &pool_ok(),
    )
    .size(12, 6)
    .named("{{platform}} {{pool}}")
    .thresholds(at_least_one())
    .alerts(&["PulseWorkerPoolBelowMinimum", "PulseWorkerPoolDown"]);
    b.ts(
        "Heartbeat age",
        "Seconds since each worker's last heartbeat: green under 60 s, orange under 120 s (max_age), red beyond.",
        "s",
        vec![line(
            format!(
                "time() - max by (platform, instance, pool, worker) ({})",
                sel("pulse_worker_last_heartbeat_timestamp_seconds")
            ),
            "{{pool}} {{worker}}",
        )],
    )
    .w(24)
    .thresholds(heartbeat_age());
    worker_status(b);
}

/// Each worker: its state, instance type, lifecycle and heartbeat.
fn worker_status(b: &mut Board) {
    let wlabels = "platform, instance, source, pool, worker";
    let attrs = format!("{wlabels}, state, instance_type, lifecycle");
    let (info, up) = (sel("pulse_worker_info"), sel("pulse_worker_up"));
    b.table(
        "Worker status",
        "Each worker: up or offline, its last heartbeat's age (green under 60 s, orange under 120 s, red beyond), and what it reports: state (healthy, active, idle; offline for a worker that is not up, never its last reported state), instance type, spot or on-demand.",
        "short",
        vec![
            format!("max by ({wlabels}) ({up})"),
            format!(
                "time() - max by ({wlabels}) ({})",
                sel("pulse_worker_last_heartbeat_timestamp_seconds")
            ),
            format!(
                "max by ({attrs}) ({info} and on (instance, source, pool, worker) ({up} == 1))\n\
                 or max by ({attrs}) (label_replace({info} and on (instance, source, pool, worker) \
                 ({up} == 0), \"state\", \"offline\", \"\", \"\"))"
            ),
        ],
    )
    .size(24, 9)
    .alerts(&["PulseWorkerPoolDown", "PulseWorkerPoolBelowMinimum"])
    .transformations(vec![
        merge(),
        organize(
            &[("Value #A", "status"), ("Value #B", "heartbeat age")],
            &["Value #C"],
            &[
                "platform", "instance", "source", "pool", "worker", "Value #A", "state",
                "Value #B", "instance_type", "lifecycle",
            ],
        ),
    ])
    .overrides(vec![
        column(
            "status",
            &[
                cell("color-background"),
                mapped(vec![value_map(&[("1", "up", "green"), ("0", "offline", "red")])]),
            ],
        ),
        column(
            "state",
            &[
                cell("color-text"),
                mapped(vec![value_map(&[("offline", "offline", "red")])]),
            ],
        ),
        column(
            "heartbeat age",
            &[unit("s"), coloured(heartbeat_age()), cell("color-background")],
        ),
    ]);
}

/// Jobs that report in: deadlines, failures and runs.
fn jobs(b: &mut Board) {
    b.row("Jobs that report in");
    let jlabels = "platform, instance, job_name";
    let latest = |metric: &str| format!("max by ({jlabels}) ({})", sel(metric));
    b.table(
        "Job status",
        "Each job that reports in (jobs: and job_keys: in the config): how far past its deadline it is (negative: time left; red once late), whether its last run failed and with which exit code, runs in flight, and the age and duration of its last success. A late job stays listed until it reports; its log tail is on the exporter's landing page.",
        "short",
        vec![
            format!("time() - {}", latest("pulse_job_deadline_timestamp_seconds")),
            latest("pulse_job_failing"),
            latest("pulse_job_last_exit_code"),
            latest("pulse_job_running"),
            format!("time() - {}", latest("pulse_job_last_success_timestamp_seconds")),
            latest("pulse_job_last_duration_seconds"),
        ],
    )
    .size(24, 9)
    .alerts(&["PulseJobLate", "PulseJobFailed", "PulseJobRunningTooLong"])
    .transformations(vec![
        merge(),
        organize(
            &[
                ("Value #A", "past deadline"),
                ("Value #B", "last run"),
                ("Value #C", "exit code"),
                ("Value #D", "running"),
                ("Value #E", "last success"),
                ("Value #F", "last duration"),
            ],
            &[],
            &[
                "platform", "instance", "job_name", "Value #A", "Value #B", "Value #C",
                "Value #D", "Value #E", "Value #F",
            ],
        ),
        sort_by("past deadline", true),
    ])
    .overrides(vec![
        column(
            "past deadline",
            &[
                unit("s"),
                cell("color-background"),
                coloured(steps(&[("green", Value::Null), ("red", json!(0))])),
            ],
        ),
        column(
            "last run",
            &[
                cell("color-background"),
                mapped(vec![value_map(&[("0", "succeeded", "green"), ("1", "failed", "red")])]),
            ],
        ),
        column("last success", &[unit("s")]),
        column("last duration", &[unit("s")]),
    ]);
    b.ts(
        "Job runs",
        "Finished runs per job and outcome over the range: a failure shows as a red bar; a job with no bar in its scheduled hour did not run.",
        "short",
        vec![line(
            format!(
                "sum by ({jlabels}, outcome) ({})",
                over("increase", "pulse_job_runs_total")
            ),
            "{{job_name}} {{outcome}}",
        )],
    )
    .w(24)
    .stacked()
    .alerts(&["PulseJobFailed"]);
}

/// The queues and workers dashboard.
pub(super) fn board() -> Board {
    let mut b = Board::new(
        "pulse-queues-workers",
        "Queues and workers",
        "Queue depth, the age of the oldest waiting job, consumers, dead letters, job latency and completions; CPU and GPU worker pools and heartbeats (spot and on-demand); jobs that report in (deadlines, failures, runs).",
    );
    queues(&mut b);
    queues_over_time(&mut b);
    workers(&mut b);
    jobs(&mut b);
    b
}
