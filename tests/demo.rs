//! The demo generator and the example configs: the numbers the configs compute from the demo's
//! data equal what direct queries (and plain Rust over the raw rows) compute on the same data.

use pulse_test_support as common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;
use futures_util::TryStreamExt;
use mongodb::bson::Document;
use redis::AsyncCommands;

/// Runs `pulse-exporter demo --once` on targets named `name`, returning stderr. The targets
/// are new, so the demo needs no `--force` (the refusal test covers that rule).
fn demo_once(name: &str, only: &str, log_dir: &std::path::Path) -> String {
    let mut args: Vec<String> = [
        "demo", "--once", "--only", only, "--users", "300", "--seed", "7",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(demo_target_args(name, log_dir));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, err) = run_cli(&args, &[]);
    assert_eq!(code, 0, "demo failed: {err}");
    err
}

/// An example config pointed at the demo targets named `name`.
fn example(file: &str, name: &str, log_dir: &std::path::Path) -> String {
    let text =
        std::fs::read_to_string(format!("{}/examples/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    text.replace("pulse_demo", name)
        .replace("/tmp/pulse-demo/logs", &log_dir.display().to_string())
}

/// A `users` row: id, plan, trial end, disabled, created.
type UserRow = (String, String, Option<DateTime<Utc>>, bool, DateTime<Utc>);
/// A `sessions` row: user, device type, last heartbeat, ended.
type SessionRow = (String, Option<String>, DateTime<Utc>, Option<DateTime<Utc>>);

/// Plan class as the specs define it.
fn class(plan: &str, trial_ends_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> &'static str {
    match plan {
        "pro" => "paid",
        "trial" if trial_ends_at.is_some_and(|t| t <= now) => "trial_expired",
        "trial" => "trial",
        _ => "free",
    }
}

async fn wait_all_ok(e: &Exporter, source: &str, checks: &[&str]) -> Scrape {
    e.wait_for(
        "every check of the source ran",
        Duration::from_secs(60),
        |m| {
            checks.iter().all(|c| {
                m.get("pulse_check_success", &[("source", source), ("check", c)]) == Some(1.0)
            })
        },
    )
    .await
}

#[tokio::test]
async fn hivesync_joip_config_numbers_equal_direct_queries_on_demo_data() {
    let name = unique("demo_pg");
    let _cleanup = demo_cleanup(&name);
    let logs = tempfile::tempdir().unwrap();
    demo_once(&name, "postgres,redis", logs.path());
    let e = Exporter::start(&example("hivesync-joip.yml", &name, logs.path()));
    let checks = [
        "app_users_registered",
        "app_users_by_plan",
        "app_online_users",
        "app_online_devices",
        "app_active_users",
        "app_ai_requests_per_user_24h",
        "app_ai_errors_24h",
        "app_top_ai_user_requests_7d",
        "app_top_ai_user_last_seen_timestamp_seconds",
        "app_activity_events_24h",
        "app_users_monthly_growth_ratio",
        "app_content_items",
        "app_community_likes",
        "app_top_community_contributors_likes",
        "app_revenue_usd",
        "app_referrals",
        "app_referral_conversion_ratio",
        "app_caption_themes",
        "app_users_tracked_active_30d",
        "app_jobs_pending",
        "app_jobs_oldest_pending_timestamp_seconds",
        "app_jobs_completed",
    ];
    let m = wait_all_ok(&e, "app-db", &checks).await;
    let db = pg().await;
    let s = &name;
    let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&db)
        .await
        .unwrap();

    // Users and plan classes, computed in Rust from the rows.
    let users: Vec<UserRow> = sqlx::query_as(&format!(
        "SELECT id, plan, trial_ends_at, disabled, created_at FROM {s}.users"
    ))
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(users.len(), 300);
    let plan_of: HashMap<&str, &str> = users
        .iter()
        .map(|(id, plan, end, _, _)| (id.as_str(), class(plan, *end, now)))
        .collect();
    let mut by_plan: BTreeMap<&str, f64> = BTreeMap::new();
    for c in plan_of.values() {
        *by_plan.entry(c).or_default() += 1.0;
    }
    assert!(
        by_plan["trial_expired"] > 0.0,
        "the demo makes expired trials"
    );
    for (plan, n) in &by_plan {
        assert_eq!(
            m.get("app_users_by_plan", &[("plan", plan)]),
            Some(*n),
            "{plan}"
        );
    }
    let trial_expired: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {s}.users WHERE plan = 'trial' AND trial_ends_at <= now()"
    ))
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(
        m.get("app_users_by_plan", &[("plan", "trial_expired")]),
        Some(trial_expired as f64)
    );
    assert_eq!(m.get("app_users_registered", &[]), Some(300.0));
    let old = users
        .iter()
        .filter(|u| u.4 <= now - chrono::TimeDelta::days(30))
        .count();
    let growth = m.get("app_users_monthly_growth_ratio", &[]).unwrap();
    assert!(
        (growth - (300 - old) as f64 / old as f64).abs() < 1e-9,
        "growth {growth}"
    );

    // DAU and MAU by plan: a login, AI request, preview request or live-view join.
    let activity: Vec<(String, DateTime<Utc>)> = sqlx::query_as(&format!(
        "SELECT user_id, created_at FROM {s}.user_activity_logs WHERE action IN ('login', 'live_view_joined')
         UNION ALL SELECT user_id, created_at FROM {s}.ai_usage_events
         UNION ALL SELECT user_id, created_at FROM {s}.preview_jobs"
    ))
    .fetch_all(&db)
    .await
    .unwrap();
    for (window, days) in [("24h", 1), ("30d", 30)] {
        let since = now - chrono::TimeDelta::days(days);
        let active: BTreeSet<&str> = activity
            .iter()
            .filter(|(_, at)| *at > since)
            .map(|(u, _)| u.as_str())
            .collect();
        assert!(!active.is_empty());
        for plan in ["paid", "free", "trial", "trial_expired"] {
            let want = active.iter().filter(|u| plan_of[*u] == plan).count() as f64;
            assert_eq!(
                m.get("app_active_users", &[("window", window), ("plan", plan)]),
                Some(want),
                "{window} {plan}"
            );
        }
    }

    // AI requests per user over 24 hours: p90 and max as Postgres computes them.
    let (p90, max): (f64, i64) = sqlx::query_as(&format!(
        "SELECT percentile_cont(0.9) WITHIN GROUP (ORDER BY n), max(n) FROM
           (SELECT count(*) AS n FROM {s}.ai_usage_events WHERE created_at > now() - interval '24 hours' GROUP BY user_id) t"
    ))
    .fetch_one(&db)
    .await
    .unwrap();
    let got = m
        .get("app_ai_requests_per_user_24h", &[("stat", "p90")])
        .unwrap();
    assert!((got - p90).abs() < 1e-9, "p90 {got} != {p90}");
    assert_eq!(
        m.get("app_ai_requests_per_user_24h", &[("stat", "max")]),
        Some(max as f64)
    );

    // AI errors by kind over 24 hours.
    let errors: Vec<(String, i64)> = sqlx::query_as(&format!(
        "SELECT status, count(*) FROM {s}.ai_usage_events WHERE status <> 'ok' AND created_at > now() - interval '24 hours' GROUP BY status"
    ))
    .fetch_all(&db)
    .await
    .unwrap();
    let errors: HashMap<String, i64> = errors.into_iter().collect();
    for kind in ["provider_error", "timeout", "safety_rejection"] {
        assert_eq!(
            m.get("app_ai_errors_24h", &[("error", kind)]),
            Some(*errors.get(kind).unwrap_or(&0) as f64),
            "{kind}"
        );
    }

    // Online users and devices: open session or a heartbeat within 2 minutes.
    let sessions: Vec<SessionRow> = sqlx::query_as(&format!(
        "SELECT user_id, device_type, last_heartbeat_at, ended_at FROM {s}.sessions"
    ))
    .fetch_all(&db)
    .await
    .unwrap();
    let online: Vec<_> = sessions
        .iter()
        .filter(|(_, _, beat, ended)| {
            (ended.is_none() && *beat > now - chrono::TimeDelta::minutes(10))
                || *beat > now - chrono::TimeDelta::minutes(2)
        })
        .collect();
    assert!(online.len() > 5 && online.len() < sessions.len());
    let distinct: BTreeSet<&String> = online.iter().map(|s| &s.0).collect();
    assert_eq!(m.get("app_online_users", &[]), Some(distinct.len() as f64));
    for device in ["desktop", "ipad", "phone", "unknown"] {
        let want = online
            .iter()
            .filter(|s| s.1.as_deref().unwrap_or("unknown") == device)
            .count();
        assert_eq!(
            m.get("app_online_devices", &[("device", device)]),
            Some(want as f64),
            "{device}"
        );
    }

    // Top 20 by 7-day AI calls: same users, same order (ties by user id), bounded to 20.
    let top: Vec<(String, i64)> = sqlx::query_as(&format!(
        "SELECT user_id, count(*) FROM {s}.ai_usage_events WHERE created_at > now() - interval '7 days'
         GROUP BY user_id ORDER BY count(*) DESC, user_id LIMIT 20"
    ))
    .fetch_all(&db)
    .await
    .unwrap();
    let mut served: Vec<(String, f64, String)> = m
        .find("app_top_ai_user_requests_7d", &[])
        .iter()
        .map(|s| {
            (
                s.labels["user_id"].clone(),
                s.value,
                s.labels["plan"].clone(),
            )
        })
        .collect();
    assert_eq!(served.len(), 20);
    served.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    for ((user, calls, plan), (want_user, want_calls)) in served.iter().zip(&top) {
        assert_eq!((user, *calls), (want_user, *want_calls as f64));
        assert_eq!(plan, plan_of[user.as_str()]);
    }
    // A display name beside each id (the username, never the email).
    let usernames: HashMap<String, String> =
        sqlx::query_as::<_, (String, String)>(&format!("SELECT id, username FROM {s}.users"))
            .fetch_all(&db)
            .await
            .unwrap()
            .into_iter()
            .collect();
    for sample in m.find("app_top_ai_user_requests_7d", &[]) {
        assert_eq!(
            sample.labels["username"],
            usernames[&sample.labels["user_id"]]
        );
    }
    // Jobs not completed yet, and the oldest of them, per queue.
    for (queue, table) in [("ai", "ai_usage_events"), ("preview", "preview_jobs")] {
        let (pending, oldest): (i64, Option<f64>) = sqlx::query_as(&format!(
            "SELECT count(*), extract(epoch FROM min(created_at))::float8 FROM {s}.{table} WHERE completed_at IS NULL"
        ))
        .fetch_one(&db)
        .await
        .unwrap();
        assert_eq!(
            m.get("app_jobs_pending", &[("queue", queue)]),
            Some(pending as f64),
            "{queue}"
        );
        assert_eq!(
            m.get(
                "app_jobs_oldest_pending_timestamp_seconds",
                &[("queue", queue)]
            ),
            oldest,
            "{queue}"
        );
    }
    // Completions are served for every window, 0 included: latency may be absent, they never are.
    assert_eq!(m.find("app_jobs_completed", &[]).len(), 6);
    assert!(
        !m.text.contains("@demo.invalid"),
        "no emails unless the config opts in"
    );
    assert_eq!(
        m.find("app_top_ai_user_last_seen_timestamp_seconds", &[])
            .len(),
        20
    );

    // Activity by feature and action.
    let acts: Vec<(String, String, i64)> = sqlx::query_as(&format!(
        "SELECT feature, action, count(*) FROM {s}.user_activity_logs WHERE created_at > now() - interval '24 hours' GROUP BY 1, 2"
    ))
    .fetch_all(&db)
    .await
    .unwrap();
    for (feature, action, n) in &acts {
        assert_eq!(
            m.get(
                "app_activity_events_24h",
                &[("feature", feature), ("action", action)]
            ),
            Some(*n as f64)
        );
    }

    // JOIP: content, community, revenue and referrals, counted in Rust from the raw rows.
    let content: Vec<(String, bool, bool)> = sqlx::query_as(&format!(
        "SELECT 'session', shared_to_community, false FROM {s}.content_sessions
         UNION ALL SELECT 'media', shared_to_community, deleted_at IS NOT NULL FROM {s}.media_items"
    ))
    .fetch_all(&db)
    .await
    .unwrap();
    for kind in ["session", "media"] {
        let live: Vec<_> = content.iter().filter(|c| c.0 == kind && !c.2).collect();
        let shared = live.iter().filter(|c| c.1).count();
        assert!(shared > 0 && shared < live.len(), "{kind}: some shared");
        assert_eq!(
            m.get("app_content_items", &[("item", kind), ("scope", "total")]),
            Some(live.len() as f64),
            "{kind}"
        );
        assert_eq!(
            m.get("app_content_items", &[("item", kind), ("scope", "shared")]),
            Some(shared as f64),
            "{kind}"
        );
    }
    assert!(
        content.iter().any(|c| c.0 == "media" && c.2),
        "the demo deletes some files, which leave the vault count"
    );
    let owners: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT coalesce(s.user_id, m.user_id) FROM {s}.community_likes l
         LEFT JOIN {s}.content_sessions s ON s.id = l.session_id
         LEFT JOIN {s}.media_items m ON m.id = l.media_id"
    ))
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(m.get("app_community_likes", &[]), Some(owners.len() as f64));
    let mut likes: HashMap<&str, usize> = HashMap::new();
    for o in &owners {
        *likes.entry(o.as_str()).or_default() += 1;
    }
    let mut ranked: Vec<(&str, usize)> = likes.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let served = m.find("app_top_community_contributors_likes", &[]);
    assert_eq!(served.len(), 5);
    for (user, n) in ranked.iter().take(5) {
        assert_eq!(
            m.get("app_top_community_contributors_likes", &[("user_id", user)]),
            Some(*n as f64),
            "{user}"
        );
    }
    for (stream, table) in [
        ("credits", "credit_purchases"),
        ("subscriptions", "subscription_invoices"),
    ] {
        let cents: Vec<i32> = sqlx::query_scalar(&format!("SELECT amount_cents FROM {s}.{table}"))
            .fetch_all(&db)
            .await
            .unwrap();
        let want = cents.iter().map(|c| i64::from(*c)).sum::<i64>() as f64 / 100.0;
        let got = m.get("app_revenue_usd", &[("stream", stream)]).unwrap();
        assert!(
            want > 0.0 && (got - want).abs() < 1e-6,
            "{stream} revenue {got} != {want}"
        );
    }
    let tracked: Vec<(String, DateTime<Utc>)> = sqlx::query_as(&format!(
        "SELECT user_id, created_at FROM {s}.user_activity_logs"
    ))
    .fetch_all(&db)
    .await
    .unwrap();
    let month_ago = now - chrono::TimeDelta::days(30);
    let tracked_30d: BTreeSet<&str> = tracked
        .iter()
        .filter(|(_, at)| *at > month_ago)
        .map(|(u, _)| u.as_str())
        .collect();
    assert_eq!(
        m.get("app_users_tracked_active_30d", &[]),
        Some(tracked_30d.len() as f64)
    );
    let referees: Vec<String> =
        sqlx::query_scalar(&format!("SELECT referee_id FROM {s}.referrals"))
            .fetch_all(&db)
            .await
            .unwrap();
    let active = referees
        .iter()
        .filter(|r| tracked_30d.contains(r.as_str()))
        .count();
    assert!(
        active > 0 && active < referees.len(),
        "{active} of {}",
        referees.len()
    );
    assert_eq!(
        m.get("app_referrals", &[("state", "total")]),
        Some(referees.len() as f64)
    );
    assert_eq!(
        m.get("app_referrals", &[("state", "active")]),
        Some(active as f64)
    );
    let ratio = m.get("app_referral_conversion_ratio", &[]).unwrap();
    assert!((ratio - active as f64 / referees.len() as f64).abs() < 1e-9);
    let themes: Vec<Option<String>> = sqlx::query_scalar(&format!(
        "SELECT details->>'theme' FROM {s}.user_activity_logs
         WHERE action IN ('smart_caption_generated', 'caption_regenerated')"
    ))
    .fetch_all(&db)
    .await
    .unwrap();
    let mut by_theme: BTreeMap<String, usize> = BTreeMap::new();
    for t in themes {
        *by_theme
            .entry(t.unwrap_or_else(|| "unknown".into()))
            .or_default() += 1;
    }
    assert_eq!(by_theme.len(), 5, "{by_theme:?}");
    for (theme, n) in &by_theme {
        assert_eq!(
            m.get("app_caption_themes", &[("theme", theme)]),
            Some(*n as f64),
            "{theme}"
        );
    }

    // Redis: queue depth, WebSocket connections, CPU and GPU workers.
    let m = e
        .wait_for("redis checks", Duration::from_secs(30), |m| {
            m.get("app_queue_depth", &[("queue", "ai")]).is_some()
                && m.get("app_queue_oldest_job_timestamp_seconds", &[("queue", "ai")])
                    .is_some()
                && m.find("pulse_worker_up", &[("pool", "gpu")]).len() == 2
                && m.find("app_websocket_sessions", &[]).len() == 1
                && m.find("app_websocket_users", &[]).len() == 1
                && !m.find("app_websocket_sessions_by_device", &[]).is_empty()
        })
        .await;
    let mut r = redis().await;
    let ai: i64 = r.llen(format!("{name}:ai_queue:tasks")).await.unwrap();
    let preview: i64 = r
        .llen(format!("{name}:preview_queue:builds"))
        .await
        .unwrap();
    assert_eq!(
        m.get("app_queue_depth", &[("queue", "ai")]),
        Some(ai as f64)
    );
    assert_eq!(
        m.get("app_queue_depth", &[("queue", "preview")]),
        Some(preview as f64)
    );
    // The oldest AI job is the head of the list; its item says when it was enqueued.
    let head: String = r.lindex(format!("{name}:ai_queue:tasks"), 0).await.unwrap();
    let head: serde_json::Value = serde_json::from_str(&head).unwrap();
    assert_eq!(
        m.get("app_queue_oldest_job_timestamp_seconds", &[("queue", "ai")]),
        head["enqueued_at"].as_f64()
    );
    assert_eq!(
        m.get("pulse_worker_pool_min_up", &[("pool", "cpu")]),
        Some(2.0)
    );
    let ws: Vec<String> = r.keys(format!("{name}:ws_sessions:*")).await.unwrap();
    assert_eq!(
        m.find("app_websocket_sessions", &[])[0].value,
        ws.len() as f64
    );
    assert_eq!(ws.len(), online.iter().filter(|s| s.3.is_none()).count());
    // The same sessions read from the hashes: distinct users, and connections by device.
    let mut ws_users = BTreeSet::new();
    let mut ws_devices: BTreeMap<String, f64> = BTreeMap::new();
    for k in &ws {
        let (user, device): (String, String) = redis::cmd("HMGET")
            .arg(k)
            .arg("user_id")
            .arg("device")
            .query_async(&mut r)
            .await
            .unwrap();
        ws_users.insert(user);
        *ws_devices.entry(device).or_default() += 1.0;
    }
    assert_eq!(
        m.find("app_websocket_users", &[])[0].value,
        ws_users.len() as f64
    );
    assert!(ws_devices.len() > 1, "{ws_devices:?}");
    for (device, n) in &ws_devices {
        assert_eq!(
            m.get("app_websocket_sessions_by_device", &[("device", device)]),
            Some(*n),
            "{device}"
        );
    }
    let gpu = m.find(
        "pulse_worker_info",
        &[("pool", "gpu"), ("lifecycle", "spot")],
    );
    assert_eq!(gpu.len(), 1);
    assert_eq!(gpu[0].labels["instance_type"], "g5.2xlarge");
}

#[tokio::test]
async fn hayon_config_numbers_equal_direct_mongodb_reads_on_demo_data() {
    let name = unique("demo_mongo");
    let _cleanup = Cleanup::default().mongo_database(&name);
    let logs = tempfile::tempdir().unwrap();
    demo_once(&name, "mongodb", logs.path());
    // Only the MongoDB part: the Stripe and S3 sources need keys and are tested on their own.
    let text = example("hayon.yml", &name, logs.path());
    let config = &text[..text.find("  # --- Redis").unwrap()];
    let e = Exporter::start(config);
    let checks = [
        "app_users_registered",
        "app_users",
        "app_users_paid",
        "app_users_top_plan",
        "app_users_signups_30d",
        "app_users_monthly_growth_ratio",
        "app_posts_usage",
        "app_users_near_post_limit",
        "app_users_near_caption_limit",
    ];
    let m = wait_all_ok(&e, "users-db", &checks).await;
    let client = mongo().await;
    let docs: Vec<Document> = client
        .database(&name)
        .collection::<Document>("users")
        .find(mongodb::bson::doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(docs.len(), 300);
    let now = Utc::now().timestamp_millis();
    let str_of = |d: &Document, k: &str| d.get_str(k).unwrap().to_owned();
    let int_of = |d: &Document, path: &str| {
        let (a, b) = path.split_once('.').unwrap();
        let v = d.get_document(a).unwrap().get(b).unwrap();
        v.as_i64().or(v.as_i32().map(i64::from)).unwrap()
    };
    let disabled = docs
        .iter()
        .filter(|d| d.get_bool("isDisabled").unwrap())
        .count();
    assert_eq!(m.get("app_users_registered", &[]), Some(300.0));
    assert_eq!(
        m.get("app_users", &[("status", "disabled")]),
        Some(disabled as f64)
    );
    assert_eq!(
        m.get("app_users", &[("status", "active")]),
        Some((300 - disabled) as f64)
    );
    let paid = docs
        .iter()
        .filter(|d| {
            str_of(d, "plan") == "pro"
                && d.get_document("subscription").unwrap().get_str("status") == Ok("active")
        })
        .count();
    assert_eq!(m.get("app_users_paid", &[]), Some(paid as f64));
    let mut plans: BTreeMap<String, usize> = BTreeMap::new();
    for d in &docs {
        *plans.entry(str_of(d, "plan")).or_default() += 1;
    }
    let (top, top_n) = plans.iter().max_by_key(|(_, n)| **n).unwrap();
    assert_eq!(
        m.get("app_users_top_plan", &[("plan", top)]),
        Some(*top_n as f64)
    );
    let month = 30 * 86_400_000;
    let recent = docs
        .iter()
        .filter(|d| d.get_datetime("createdAt").unwrap().timestamp_millis() >= now - month)
        .count();
    assert_eq!(m.get("app_users_signups_30d", &[]), Some(recent as f64));
    let growth = m.get("app_users_monthly_growth_ratio", &[]).unwrap();
    assert!((growth - recent as f64 / (300 - recent) as f64).abs() < 1e-9);
    for plan in plans.keys() {
        let of_plan: Vec<&Document> = docs.iter().filter(|d| &str_of(d, "plan") == plan).collect();
        let sum = |path: &str| of_plan.iter().map(|d| int_of(d, path)).sum::<i64>() as f64;
        assert_eq!(
            m.get(
                "app_posts_usage",
                &[("plan", plan), ("field", "posts_created")]
            ),
            Some(sum("usage.postsCreated"))
        );
        assert_eq!(
            m.get(
                "app_posts_usage",
                &[("plan", plan), ("field", "posts_limit")]
            ),
            Some(sum("limits.maxPosts"))
        );
    }
    for (usage, limit, metric) in [
        (
            "usage.postsCreated",
            "limits.maxPosts",
            "app_users_near_post_limit",
        ),
        (
            "usage.captionGenerations",
            "limits.maxCaptionGenerations",
            "app_users_near_caption_limit",
        ),
    ] {
        let near = docs
            .iter()
            .filter(|d| {
                !d.get_bool("isDisabled").unwrap()
                    && int_of(d, usage) as f64 >= int_of(d, limit) as f64 * 0.8
            })
            .count();
        assert!(near > 0, "the demo puts some users near their {limit}");
        assert_eq!(m.get(metric, &[]), Some(near as f64));
    }
}

/// Someone else's table, with one row, in a new schema `name`: what the demo must leave.
async fn someones_orders_table(db: &sqlx::PgPool, name: &str) {
    sqlx::raw_sql(&format!(
        "CREATE SCHEMA {name}; CREATE TABLE {name}.orders (id int); INSERT INTO {name}.orders VALUES (1)"
    ))
    .execute(db)
    .await
    .unwrap();
}

#[tokio::test]
async fn demo_refuses_targets_holding_data_it_did_not_make() {
    let name = unique("demo_refuse");
    let _cleanup = Cleanup::default().mongo_database(&name);
    let logs = tempfile::tempdir().unwrap();
    let args = |only: &str| {
        let mut a: Vec<String> = [
            "demo", "--once", "--only", only, "--users", "20", "--days", "2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(demo_target_args(&name, logs.path()));
        a
    };
    let run = |only: &str, extra: &[&str]| {
        let mut a = args(only);
        a.extend(extra.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        run_cli(&a, &[])
    };

    // Postgres: a schema with someone's table is refused, and the table is untouched.
    let db = pg().await;
    someones_orders_table(&db, &name).await;
    let (code, _, err) = run("postgres", &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("orders") && err.contains("--force"), "{err}");
    let tables = |db: sqlx::PgPool, name: String| async move {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
        )
        .bind(name)
        .fetch_one(&db)
        .await
        .unwrap()
    };
    assert_eq!(
        tables(db.clone(), name.clone()).await,
        1,
        "nothing was created beside it"
    );
    // With --force it writes beside the table, which keeps its row.
    let (code, _, err) = run("postgres", &["--force"]);
    assert_eq!(code, 0, "{err}");
    let orders: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {name}.orders"))
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(orders, 1);
    assert!(tables(db.clone(), name.clone()).await > 5);
    // Once the schema holds only the demo's tables, a re-run needs no force.
    sqlx::query(&format!("DROP TABLE {name}.orders"))
        .execute(&db)
        .await
        .unwrap();
    let (code, _, err) = run("postgres", &[]);
    assert_eq!(code, 0, "a re-run on the demo's own schema: {err}");
    // A table named like one of the demo's but without its marker is never replaced, even
    // with --force.
    sqlx::raw_sql(&format!(
        "DROP SCHEMA {name} CASCADE; CREATE SCHEMA {name}; CREATE TABLE {name}.users (id int); INSERT INTO {name}.users VALUES (7)"
    ))
    .execute(&db)
    .await
    .unwrap();
    let (code, _, err) = run("postgres", &["--force"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("users") && err.contains("never replaces"),
        "{err}"
    );
    let kept: i32 = sqlx::query_scalar(&format!("SELECT id FROM {name}.users"))
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(kept, 7);
    sqlx::query(&format!("DROP SCHEMA {name} CASCADE"))
        .execute(&db)
        .await
        .unwrap();

    // MongoDB: a database with another collection.
    let client = mongo().await;
    client
        .database(&name)
        .collection::<Document>("posts")
        .insert_one(mongodb::bson::doc! {"title": "mine"})
        .await
        .unwrap();
    let (code, _, err) = run("mongodb", &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("posts"), "{err}");
    let left = client
        .database(&name)
        .collection::<Document>("posts")
        .count_documents(mongodb::bson::doc! {})
        .await
        .unwrap();
    assert_eq!(left, 1);
    client
        .database(&name)
        .collection::<Document>("posts")
        .drop()
        .await
        .unwrap();

    // Redis: a prefix that holds someone's keys is refused; a key with one of the demo's
    // names but no marker is never replaced, even with --force.
    let mut r = redis().await;
    let _: () = r.set(format!("{name}:session:abc"), "x").await.unwrap();
    let (code, _, err) = run("redis", &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("session:abc"), "{err}");
    let _: () = r
        .rpush(format!("{name}:ai_queue:tasks"), "job-of-someone")
        .await
        .unwrap();
    let (code, _, err) = run("redis", &["--force"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("ai_queue:tasks"), "{err}");
    let kept: Option<String> = r.get(format!("{name}:session:abc")).await.unwrap();
    assert_eq!(kept.as_deref(), Some("x"));
    let queued: Vec<String> = r
        .lrange(format!("{name}:ai_queue:tasks"), 0, -1)
        .await
        .unwrap();
    assert_eq!(queued, ["job-of-someone"]);
    // Beside someone's unrelated key, --force writes and leaves it alone.
    let _: () = r.del(format!("{name}:ai_queue:tasks")).await.unwrap();
    let (code, _, err) = run("redis", &["--force"]);
    assert_eq!(code, 0, "{err}");
    let kept: Option<String> = r.get(format!("{name}:session:abc")).await.unwrap();
    assert_eq!(kept.as_deref(), Some("x"));
    let keys: Vec<String> = r.keys(format!("{name}:*")).await.unwrap();
    let _: () = r.del(keys).await.unwrap();
    // A prefix without a separator could claim other applications' keys: refused as usage.
    let (code, _, err) = run_cli(
        &["demo", "--once", "--only", "redis", "--redis-prefix", "app"],
        &[],
    );
    assert_eq!(code, 2, "{err}");

    // A service that cannot be reached stops the run before anything is written anywhere.
    let (code, _, err) = run("postgres,redis", &["--redis-url", "redis://127.0.0.1:1/0"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--only postgres"), "{err}");
    let schemas: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1",
    )
    .bind(&name)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(schemas, 0, "nothing was written to Postgres");

    // RabbitMQ: a queue with the demo's name but no marker queue is never replaced.
    let http = reqwest::Client::new();
    let queue = format!("{RABBIT_API}/api/queues/%2F/{name}.scheduled_posts");
    let put = http
        .put(&queue)
        .basic_auth("guest", Some("guest"))
        .json(&serde_json::json!({"durable": true}))
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());
    let (code, _, err) = run("rabbitmq", &["--force"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("scheduled_posts"), "{err}");
    let still = http
        .get(&queue)
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .unwrap();
    assert!(still.status().is_success(), "the queue was left alone");
    http.delete(&queue)
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn demo_keeps_generating_live_activity_until_stopped() {
    let name = unique("demo_live");
    let _cleanup = demo_cleanup(&name);
    let logs = tempfile::tempdir().unwrap();
    // Stopped however the test ends: a failed assertion must not leave the demo writing.
    let mut child = Proc::adopt(
        std::process::Command::new(bin())
            .args([
                "demo",
                "--only",
                "postgres,redis,rabbitmq",
                "--users",
                "50",
                "--days",
                "2",
                "--rate",
                "20",
            ])
            .args(demo_target_args(&name, logs.path()))
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let db = pg().await;
    let count = |db: sqlx::PgPool, name: String| async move {
        sqlx::query_scalar::<_, i64>(&format!(
            "SELECT count(*) FROM {name}.ai_usage_events WHERE created_at > now() - interval '1 minute'"
        ))
        .fetch_one(&db)
        .await
        .unwrap_or(0)
    };
    let mut live = 0;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        live = count(db.clone(), name.clone()).await;
        if live >= 20 {
            break;
        }
    }
    assert!(live >= 20, "live AI requests appear: {live}");
    // The example config reads the live demo at the default log level: its log must stay
    // quiet (state changes only), whatever the data does meanwhile.
    // Its Redis keys come from PULSE_DEMO_REDIS_PREFIX, as the demo's do: the default is
    // made wrong here, so a check that reads the right keys followed the variable.
    let prefix = format!("{name}:");
    let exporter = Exporter::start_with(
        &example("hivesync-joip.yml", &name, logs.path()).replace(
            &format!("${{env:PULSE_DEMO_REDIS_PREFIX:-{name}:}}"),
            "${env:PULSE_DEMO_REDIS_PREFIX:-not_the_demo:}",
        ),
        &["--log.level", "info"],
        &[("PULSE_DEMO_REDIS_PREFIX", prefix.as_str())],
    );
    let started = std::time::Instant::now();
    // Jobs queue in Redis and the AI log gets JSON lines.
    let log = std::fs::read_to_string(logs.path().join("ai-events.log")).unwrap();
    assert!(log.lines().any(|l| l.contains("\"event\":\"ai_request\"")));
    // The control keys: paused AI workers complete nothing while jobs keep arriving, a GPU
    // scale-in keeps only the first worker beating, and paused signups add no account.
    let mut r = redis().await;
    let _: () = r
        .set(format!("{name}:control:signups"), "paused")
        .await
        .unwrap();
    let _: () = r
        .set(format!("{name}:control:ai_workers"), "paused")
        .await
        .unwrap();
    let _: () = r
        .set(format!("{name}:control:gpu_workers"), "1")
        .await
        .unwrap();
    // The demo reads the control keys at the start of each one-second tick and beats its
    // workers in the middle: the second beat seen after the keys were set comes from a tick
    // that read them, and what the tick before it did is done by then. (A fixed 2.5 s sleep
    // raced a tick slowed by a busy machine.)
    let cpu1 = format!("{name}:worker:heartbeat:cpu:cpu-1");
    let mut beat: Option<String> = r.get(&cpu1).await.unwrap();
    let mut beats = 0;
    let waited = std::time::Instant::now();
    while beats < 2 {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "the demo beat {beats} times in 60 s after the controls were set"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now: Option<String> = r.get(&cpu1).await.unwrap();
        if now != beat {
            beats += 1;
            beat = now;
        }
    }
    let paused_at: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&db)
        .await
        .unwrap();
    let gpu2 = format!("{name}:worker:heartbeat:gpu:gpu-2");
    let gpu2_before: String = r.get(&gpu2).await.unwrap();
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    // Rows of the demo's `table` whose `column` is later than `at`.
    let since = |table: &'static str, column: &'static str, at: DateTime<Utc>| {
        let (db, name) = (db.clone(), name.clone());
        async move {
            sqlx::query_scalar::<_, i64>(&format!(
                "SELECT count(*) FROM {name}.{table} WHERE {column} > $1"
            ))
            .bind(at)
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };
    assert_eq!(
        since("ai_usage_events", "completed_at", paused_at).await,
        0,
        "paused workers complete nothing"
    );
    let created_since = since("ai_usage_events", "created_at", paused_at).await;
    assert!(created_since > 0, "jobs keep arriving");
    let gpu2_after: String = r.get(&gpu2).await.unwrap();
    assert_eq!(gpu2_before, gpu2_after, "a scaled-in worker stops beating");
    assert_eq!(
        since("users", "created_at", paused_at).await,
        0,
        "nobody signs up while signups are paused"
    );
    let _: () = r
        .del(&[
            format!("{name}:control:ai_workers"),
            format!("{name}:control:gpu_workers"),
            format!("{name}:control:signups"),
        ])
        .await
        .unwrap();
    let resumed_at: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&db)
        .await
        .unwrap();
    let mut resumed = 0;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        resumed = since("ai_usage_events", "completed_at", resumed_at).await;
        if resumed > 0 {
            break;
        }
    }
    assert!(resumed > 0, "resumed workers complete jobs again");
    // At `--rate 20`, about two signups a second once resumed.
    let mut signed_up = 0;
    for _ in 0..40 {
        signed_up = since("users", "created_at", resumed_at).await;
        if signed_up > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(signed_up > 0, "signups resume");
    // The workers' keys were found through the variable: the CPU workers beat all along.
    exporter
        .wait_for(
            "the CPU workers, read through PULSE_DEMO_REDIS_PREFIX",
            Duration::from_secs(30),
            |m| {
                m.get("pulse_worker_pool_workers_up", &[("pool", "cpu")])
                    .is_some_and(|up| up > 0.0)
            },
        )
        .await;
    // Quiet logs: a few lines in all, none from a library (sqlx's slow-statement warnings,
    // a driver's reconnect chatter), none repeated run after run.
    if started.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_secs(15) - started.elapsed()).await;
    }
    let log = exporter.logs();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines.len() <= 10,
        "{} log lines in {:?}:\n{log}",
        lines.len(),
        started.elapsed()
    );
    for l in &lines {
        assert!(
            l.contains("target=pulse_exporter"),
            "a library logs at the default level: {l}"
        );
    }
    drop(exporter);
    // SIGTERM stops it cleanly.
    let status = child.terminate();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn demo_clean_removes_exactly_what_the_demo_wrote() {
    let name = unique("demo_clean");
    let _cleanup = demo_cleanup(&name);
    let logs = tempfile::tempdir().unwrap();
    let log_dir = logs.path().join("demo-logs");
    let run = |mode: &str, extra: &[&str]| {
        let mut a: Vec<String> = ["demo", mode, "--only", "postgres,redis,rabbitmq"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a.extend(demo_target_args(&name, &log_dir));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        run_cli(&a, &[])
    };
    // Someone's table in the demo's schema and someone's key under its prefix: they stay.
    let db = pg().await;
    someones_orders_table(&db, &name).await;
    let mut r = redis().await;
    let _: () = r.set(format!("{name}:mine"), "keep").await.unwrap();
    let (code, _, err) = run("--once", &["--force", "--users", "20", "--days", "2"]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(log_dir.join("notes.txt"), "mine").unwrap();

    let tables = || async {
        let mut t: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
        )
        .bind(&name)
        .fetch_all(&db)
        .await
        .unwrap();
        t.sort();
        t
    };
    assert!(tables().await.len() > 5);
    let (code, _, err) = run("--clean", &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("postgres: dropped"), "{err}");
    assert!(err.contains("redis: deleted"), "{err}");
    assert!(err.contains("rabbitmq: deleted"), "{err}");

    assert_eq!(
        tables().await,
        ["orders"],
        "only someone else's table is left"
    );
    let keys: Vec<String> = r.keys(format!("{name}:*")).await.unwrap();
    assert_eq!(keys, [format!("{name}:mine")]);
    let http = reqwest::Client::new();
    for q in ["scheduled_posts", "scheduled_posts.dlq", "_pulse_demo"] {
        let status = http
            .get(format!("http://127.0.0.1:15672/api/queues/%2F/{name}.{q}"))
            .basic_auth("guest", Some("guest"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 404, "queue {name}.{q} is gone");
    }
    let mut left: Vec<String> = std::fs::read_dir(&log_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["notes.txt"], "the demo's log files only");

    // Without the marker, a table named like the demo's is someone else's: a second clean
    // drops nothing and says so.
    sqlx::raw_sql(&format!("CREATE TABLE {name}.users (id int)"))
        .execute(&db)
        .await
        .unwrap();
    let (code, _, err) = run("--clean", &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("no demo marker; nothing dropped"), "{err}");
    assert_eq!(tables().await, ["orders", "users"]);
}
