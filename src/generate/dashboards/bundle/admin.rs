//! The admin overview: the platforms' admin analytics view (HiveSync spec section 4, JOIP
//! and Hayon analytics): business health against the usual week, summary cards, usage
//! charts, growth, content, top users and incidents.

use serde_json::{json, Value};

use super::super::board::Board;
use super::super::fields::{
    by_query, cell, coloured, column, mapped, merge, organize, sort_by, steps, unit, value_map,
};
use super::super::panel::{guarded, line};
use super::{
    by, check_ok, eq, error_rate, job_age, latency, queue_depth, raw, redis_depth, redis_oldest,
    rx, sel, sel_with, source_ok, FILTER,
};
use crate::generate::bundle::{Selection, ALERTS};
use crate::generate::style;

/// A business signal of `prometheus/rules/pulse-business.yml` as the overview draws it.
struct Signal {
    /// Its `signal` label.
    name: &'static str,
    /// Its chart's title.
    title: &'static str,
    /// What it counts.
    what: &'static str,
    /// 1 while what it is read from works.
    ok: String,
}

/// The business signals, in the order the overview shows them.
fn signals() -> [Signal; 4] {
    [
        Signal {
            name: "signups",
            title: "Signups per hour",
            what: "Accounts registered in the last hour (the growth of app_users_registered).",
            ok: check_ok(&["app_users_registered"]),
        },
        Signal {
            name: "payments",
            title: "Payments per hour",
            what: "PaymentIntents that succeeded in the last hour (Stripe events read by type).",
            ok: source_ok("stripe"),
        },
        Signal {
            name: "ai_requests",
            title: "AI requests per hour",
            what: "AI requests created in the last hour.",
            ok: check_ok(&["app_ai_requests"]),
        },
        Signal {
            name: "preview_requests",
            title: "Previews requested per hour",
            what: "Preview builds requested in the last hour.",
            ok: check_ok(&["app_preview_requests"]),
        },
    ]
}

/// The share of the usual under which PulseBusinessSignalLow fires, read from its rule, so
/// the dashboard draws the line the alert uses.
fn business_ratio() -> f64 {
    let rules = ALERTS.rules(&Selection::default());
    let pattern =
        regex::Regex::new(r"business:signal:count1h < ([0-9.]+) \* business:signal:usual1h")
            .expect("a valid pattern");
    pattern
        .captures(&rules)
        .and_then(|c| c[1].parse().ok())
        .expect("PulseBusinessSignalLow compares count1h with a share of usual1h (unit-tested)")
}

/// The row on top: each business signal against the same hour of the week, usually, so an
/// SRE sees at a glance whether today is normal.
fn business_health(b: &mut Board) {
    let ratio = business_ratio();
    let percent = format!("{:.0}%", ratio * 100.0);
    b.row("Business health");
    let shares = signals()
        .iter()
        .map(|s| {
            let pick = [eq("signal", s.name)];
            let now = format!(
                "sum by ({}) ({})",
                by(&[]),
                sel_with("business:signal:count1h", &pick)
            );
            let usual = format!(
                "sum by ({}) ({})",
                by(&[]),
                sel_with("business:signal:usual1h", &pick)
            );
            guarded(
                &format!("{now}\n/ ({usual} > 0)"),
                &format!("{{{{platform}}}} {}", s.name),
                &s.ok,
            )
        })
        .collect();
    b.number(
        "Business signals against their usual",
        &format!("Each signal's last hour as a share of the same hour of the week, usually (the median of the last four weeks). Red under {percent} (PulseBusinessSignalLow fires after 15 minutes there, in an hour busy enough to judge), orange under 80 %. DEGRADED while the check or source a signal is read from fails; NO DATA with less than two weeks of history, or for a signal this platform does not publish."),
        "percentunit",
        shares,
    )
    .size(24, 4)
    .thresholds(steps(&[("red", Value::Null), ("orange", json!(ratio)), ("green", json!(0.8))]))
    .color_mode("background")
    .alerts(&["PulseBusinessSignalLow"]);
    // The usual band: from the usual (dashed) down to the alert line (dotted), one pair per
    // platform shown.
    let band = || {
        vec![
            by_query(
                "B",
                &[(
                    "custom.lineStyle",
                    json!({"fill": "dash", "dash": [10, 10]}),
                )],
            ),
            by_query(
                "C",
                &[("custom.lineStyle", json!({"fill": "dot", "dash": [2, 6]}))],
            ),
        ]
    };
    for s in signals() {
        let pick = [eq("signal", s.name)];
        let today = format!(
            "sum by (platform) ({})",
            sel_with("business:signal:count1h", &pick)
        );
        let usual_line = format!(
            "sum by (platform) ({})",
            sel_with("business:signal:usual1h", &pick)
        );
        b.ts(
            s.title,
            &format!("{} Solid: today. Dashed: the usual for the same hour of the week (the median of the last four weeks). Dotted: the alert line, {percent} of the usual: today under it for 15 minutes, in an hour whose usual is large enough, is PulseBusinessSignalLow.", s.what),
            "short",
            vec![
                line(today, "{{platform}} today"),
                line(usual_line.clone(), "{{platform}} usual"),
                line(format!("{ratio} * {usual_line}"), "{{platform}} alert line"),
            ],
        )
        .size(6, 7)
        .time_from("2d")
        .alerts(&["PulseBusinessSignalLow"])
        .overrides(band());
    }
}

/// `sum by (platform, instance) (metric{matchers})`: a card's value.
fn total(metric: &str, matchers: &[String]) -> String {
    format!("sum by ({}) ({})", by(&[]), sel_with(metric, matchers))
}

/// [`total`] of a metric's `window` series.
fn in_window(metric: &str, window: &str) -> String {
    total(metric, &[eq("window", window)])
}

/// The summary cards.
fn summary(b: &mut Board) {
    b.row("Summary");
    b.card(
        "Online users now",
        "Distinct users with an open WebSocket session or a heartbeat in the last 2 minutes.",
        "short",
        &total("app_online_users", &[]),
        &check_ok(&["app_online_users"]),
    );
    b.card(
        "AI requests per minute",
        "AI requests created in the last 60 seconds (sliding window: RPM).",
        "short",
        &in_window("app_ai_requests", "1m"),
        &check_ok(&["app_ai_requests"]),
    );
    b.card(
        "AI requests (last hour)",
        "AI requests created in the last 60 minutes (sliding window: RPH).",
        "short",
        &in_window("app_ai_requests", "1h"),
        &check_ok(&["app_ai_requests"]),
    );
    b.card(
        "AI queue depth",
        "Jobs waiting in the AI task queue (LLEN; an empty queue has no key and reads 0). Orange from 100, red from 500; the alert watches whether it drains, not its size.",
        "short",
        &redis_depth(Some("ai")),
        &check_ok(&["ai-queue"]),
    )
    .thresholds(queue_depth())
    .alerts(&["PulseJobsNotProcessed"]);
    b.card(
        "Preview queue depth",
        "Jobs waiting in the preview build queue (LLEN; an empty queue has no key and reads 0). Orange from 100, red from 500.",
        "short",
        &redis_depth(Some("preview")),
        &check_ok(&["preview-queue"]),
    )
    .thresholds(queue_depth())
    .alerts(&["PulseJobsNotProcessed"]);
    summary_users(b);
}

/// The summary's user cards: plans, DAU and MAU, previews, error rates, the oldest AI job.
fn summary_users(b: &mut Board) {
    b.card(
        "Paid vs free: paid share",
        "Paid accounts over all accounts (HiveSync: plan class paid; Hayon: Pro with an active Stripe subscription). Never +Inf: no value without accounts.",
        "percentunit",
        &format!(
            "({} or {})\n/ ({} > 0)",
            total("app_users_by_plan", &[eq("plan", "paid")]),
            total("app_users_paid", &[]),
            total("app_users_registered", &[])
        ),
        &check_ok(&["app_users_by_plan", "app_users_paid", "app_users_registered"]),
    )
    .decimals(1)
    .named("{{platform}}");
    b.card(
        "DAU",
        "Distinct users active in the last 24 hours: a login, AI request, preview request or live-view join.",
        "short",
        &in_window("app_active_users", "24h"),
        &check_ok(&["app_active_users"]),
    );
    b.card(
        "MAU",
        "Distinct users active in the last 30 days (same activity as DAU).",
        "short",
        &in_window("app_active_users", "30d"),
        &check_ok(&["app_active_users"]),
    );
    b.card(
        "Preview requests (last hour)",
        "Preview builds requested in the last 60 minutes (sliding window).",
        "short",
        &in_window("app_preview_requests", "1h"),
        &check_ok(&["app_preview_requests"]),
    );
    b.card(
        "AI error rate (24 h)",
        "AI requests of the last 24 hours that failed (provider errors, timeouts, safety rejections) over all AI requests of the last 24 hours. Orange from 2 %, red from 5 %.",
        "percentunit",
        &format!(
            "{}\n/ ({} > 0)",
            total("app_ai_errors_24h", &[]),
            in_window("app_ai_requests", "24h")
        ),
        &check_ok(&["app_ai_errors_24h", "app_ai_requests"]),
    )
    .decimals(1)
    .thresholds(error_rate());
    b.card(
        "Preview failure rate (24 h)",
        "Preview builds of the last 24 hours that failed over all preview builds requested in the last 24 hours. Orange from 2 %, red from 5 %.",
        "percentunit",
        &format!(
            "{}\n/ ({} > 0)",
            total("app_preview_failures_24h", &[]),
            in_window("app_preview_requests", "24h")
        ),
        &check_ok(&["app_preview_failures_24h", "app_preview_requests"]),
    )
    .decimals(1)
    .thresholds(error_rate());
    b.card(
        "Oldest waiting AI job",
        "How long the oldest job of the AI queue has waited (0 when the queue is empty). Orange from 5 minutes, red from 10 (the alert's threshold).",
        "s",
        &redis_oldest(Some("ai")),
        &check_ok(&["ai-queue"]),
    )
    .thresholds(job_age())
    .alerts(&["PulseOldestJobTooOld"]);
}

/// The usage charts and the estimated AI cost.
fn charts(b: &mut Board) {
    b.row("Charts");
    b.ts(
        "AI requests per hour (24 h)",
        "AI requests created in the sliding hour, over the last 24 hours.",
        "short",
        vec![line(
            format!(
                "sum by (platform) ({})",
                sel_with("app_ai_requests", &[eq("window", "1h")])
            ),
            "{{platform}} requests / hour",
        )],
    )
    .time_from("24h");
    b.ts(
        "DAU (14 days) by plan",
        "Daily active users by plan class, over the last 14 days.",
        "short",
        vec![line(
            format!(
                "sum by (plan) ({})",
                sel_with("app_active_users", &[eq("window", "24h")])
            ),
            "{{plan}}",
        )],
    )
    .stacked()
    .time_from("14d");
    b.bars(
        "Users by plan",
        "Accounts by plan class: paid, free, trial, and trials that ended without an upgrade.",
        "short",
        vec![line(
            format!("sum by (plan) ({})", sel("app_users_by_plan")),
            "{{plan}}",
        )],
    );
    b.ts(
        "Average AI latency",
        "Average seconds from AI job created to completed, over jobs completed in each window (left), and how many completed in it (right): when no job completes, the latency has no value and the completions read 0.",
        "s",
        vec![
            line(
                format!("avg by (window) ({})", sel_with("app_job_latency_avg_seconds", &[eq("queue", "ai")])),
                "latency {{window}}",
            ),
            line(
                format!("sum by (window) ({})", sel_with("app_jobs_completed", &[eq("queue", "ai")])),
                "completed {{window}}",
            ),
        ],
    )
    .w(8)
    .alerts(&["PulseJobLatencyHigh"])
    .thresholds(latency())
    .overrides(vec![by_query(
        "B",
        &[
            ("unit", json!("short")),
            ("custom.axisPlacement", json!("right")),
            ("custom.drawStyle", json!("bars")),
            ("custom.fillOpacity", json!(30)),
        ],
    )]);
    charts_usage(b);
}

/// The charts of use: AI requests per user and errors, devices, connections, the cost estimate.
fn charts_usage(b: &mut Board) {
    b.ts(
        "AI requests per user (24 h)",
        "Median, p90 and max of AI requests per user over the last 24 hours, across users with at least one.",
        "short",
        vec![line(format!("max by (stat) ({})", sel("app_ai_requests_per_user_24h")), "{{stat}}")],
    )
    .w(8);
    b.ts(
        "AI errors (24 h) by kind",
        "AI requests of the last 24 hours that failed: provider errors, timeouts, safety rejections.",
        "short",
        vec![line(format!("sum by (error) ({})", sel("app_ai_errors_24h")), "{{error}}")],
    )
    .w(8);
    b.ts(
        "Online devices by type",
        "Online sessions by device type.",
        "short",
        vec![line(
            format!("sum by (device) ({})", sel("app_online_devices")),
            "{{device}}",
        )],
    )
    .w(8)
    .stacked();
    b.ts(
        "WebSocket connections",
        "Open WebSocket connections (ws_sessions:* keys in Redis): all, the distinct users behind them, and by device type.",
        "short",
        vec![
            line(format!("sum({})", sel("app_websocket_sessions")), "connections"),
            line(format!("sum({})", sel("app_websocket_users")), "distinct users"),
            line(
                format!("sum by (device) ({})", sel("app_websocket_sessions_by_device")),
                "{{device}}",
            ),
        ],
    )
    .w(8);
    let gpu_hours = format!(
        "sum by ({}) (\n  ({} == 1)\n  * on (instance, source, pool, worker) group_left (instance_type) {}\n  \
         * on (instance, instance_type) group_left () max by (instance, instance_type) ({})\n) * 730",
        by(&[]),
        sel_with("pulse_worker_up", &[eq("pool", "gpu")]),
        sel_with("pulse_worker_info", &[eq("pool", "gpu")]),
        sel("app_instance_price_usd_per_hour"),
    );
    b.number(
        "Estimated AI cost per month (ESTIMATE)",
        "Estimates only: tokens of the last 30 days at the configured price per 1k tokens, and every GPU worker up now running a whole month (730 h) at its configured hourly price.",
        "currencyUSD",
        vec![
            guarded(
                &total("app_ai_cost_estimate_usd", &[eq("basis", "tokens")]),
                "tokens (30 d)",
                &check_ok(&["app_ai_cost_estimate_usd"]),
            ),
            guarded(&gpu_hours, "GPU instance hours", &check_ok(&["heartbeat:gpu"])),
        ],
    )
    .size(8, 8);
}

/// Growth, users and plan limits; the daily roll-ups.
fn growth(b: &mut Board) {
    b.row("Growth and users");
    b.card(
        "Registered users",
        "All accounts, whatever their plan or status, per platform.",
        "short",
        &total("app_users_registered", &[]),
        &check_ok(&["app_users_registered"]),
    )
    .size(6, 6)
    .named("{{platform}}");
    b.card(
        "Signups (30 d)",
        "Accounts created in the last 30 days (JOIP \"New Users\"), per platform.",
        "short",
        &total("app_users_signups_30d", &[]),
        &check_ok(&["app_users_signups_30d"]),
    )
    .size(6, 6)
    .named("{{platform}}");
    b.card(
        "Monthly growth",
        "Accounts created in the last 30 days over the accounts that existed before them, per platform.",
        style::unit_of("app_users_monthly_growth_ratio"),
        &format!("max by ({}) ({})", by(&[]), sel("app_users_monthly_growth_ratio")),
        &check_ok(&["app_users_monthly_growth_ratio"]),
    )
    .size(6, 6)
    .named("{{platform}}")
    .decimals(1);
    let change = [
        ("app_users_registered", "users"),
        ("app_users_signups_30d", "signups"),
        ("app_users_tracked_active_30d", "active users"),
    ]
    .iter()
    .map(|(metric, label)| {
        let earlier = style::fold(&format!("{} offset $__range", raw(metric)));
        guarded(
            &format!(
                "(sum by ({by}) ({})\n/ (sum by ({by}) ({earlier}) > 0) - 1) * 100",
                sel(metric),
                by = by(&[])
            ),
            &format!("{{{{platform}}}} {label}"),
            &check_ok(&[metric]),
        )
    })
    .collect();
    b.number(
        "Change against the previous period",
        "Each number now against its value one dashboard time range ago (the range picked above: 30 days compares with the previous month). Needs that much history in Prometheus: NO DATA until then.",
        "percent",
        change,
    )
    .decimals(1);
    growth_plans(b);
    growth_limits(b);
    growth_rollups(b);
}

/// Users by status and plan, and those near their plan's limits.
fn growth_plans(b: &mut Board) {
    b.card(
        "Users by status",
        "Accounts by status: active can log in, disabled were deactivated by an admin (Hayon isDisabled).",
        "short",
        &format!("sum by ({}) ({})", by(&["status"]), sel("app_users")),
        &check_ok(&["app_users"]),
    )
    .size(6, 6)
    .named("{{platform}} {{status}}");
    b.card(
        "Paid users",
        "Accounts on a paid plan (HiveSync: plan class paid; Hayon: Pro plan with an active Stripe subscription).",
        "short",
        &format!(
            "{}\nor {}",
            total("app_users_by_plan", &[eq("plan", "paid")]),
            total("app_users_paid", &[])
        ),
        &check_ok(&["app_users_by_plan", "app_users_paid"]),
    )
    .size(6, 6)
    .named("{{platform}}");
    b.card(
        "Top plan",
        "The most common plan across all accounts (name) and how many accounts are on it.",
        "short",
        &format!("max by ({}) ({})", by(&["plan"]), sel("app_users_top_plan")),
        &check_ok(&["app_users_top_plan"]),
    )
    .size(6, 6)
    .named("{{platform}}: {{plan}}");
    b.card(
        "Users near their plan limits",
        "Active accounts that used at least 80 % of their plan's post limit, and of their caption-generation limit.",
        "short",
        &format!(
            "label_replace({}, \"limit\", \"posts\", \"\", \"\")\nor label_replace({}, \"limit\", \"captions\", \"\", \"\")",
            total("app_users_near_post_limit", &[]),
            total("app_users_near_caption_limit", &[])
        ),
        &check_ok(&["app_users_near_post_limit", "app_users_near_caption_limit"]),
    )
    .size(6, 6)
    .named("{{platform}} {{limit}}");
}

/// MAU by plan, and posts and captions against the plans' limits.
fn growth_limits(b: &mut Board) {
    b.ts(
        "MAU (30 days) by plan",
        "Distinct users active in the last 30 days by plan class.",
        "short",
        vec![line(
            format!(
                "sum by (plan) ({})",
                sel_with("app_active_users", &[eq("window", "30d")])
            ),
            "{{plan}}",
        )],
    )
    .w(8)
    .stacked();
    b.bars(
        "Posts against plan limits",
        "Posts created and the post limits they count against, summed per plan (Hayon).",
        "short",
        vec![line(
            format!(
                "sum by (plan, field) ({})",
                sel_with(
                    "app_posts_usage",
                    &[rx("field", "posts_created|posts_limit")]
                )
            ),
            "{{plan}} {{field}}",
        )],
    );
    b.bars(
        "Captions against plan limits",
        "Caption generations used and the caption-generation limits they count against, summed per plan (Hayon).",
        "short",
        vec![line(
            format!(
                "sum by (plan, field) ({})",
                sel_with("app_posts_usage", &[rx("field", "captions_generated|captions_limit")])
            ),
            "{{plan}} {{field}}",
        )],
    );
}

/// The daily roll-ups: their rows and their latency.
fn growth_rollups(b: &mut Board) {
    let rollups = [
        "dau",
        "mau",
        "ai_requests",
        "preview_requests",
        "max_queue_depth",
    ];
    b.ts(
        "Daily roll-ups",
        "The usage_analytics_daily figures (recording rules usage_daily:*, all HiveSync exporters), one point per day: each day's value is read at its end.",
        "short",
        rollups
            .iter()
            .map(|r| line(format!("usage_daily:{r}"), *r))
            .collect(),
    )
    .w(16)
    .time_from("30d")
    .alerts(&["PulseDailyRollupStale"])
    .interval("1d");
    b.ts(
        "Daily roll-up: average latency",
        "The roll-up's avg_latency_ms: the recording rule usage_daily:avg_latency_ms (one point per day, read at its end) and the backend's own latest usage_analytics_daily row.",
        "ms",
        vec![
            line("usage_daily:avg_latency_ms", "avg_latency_ms (recording rule)"),
            line(
                format!(
                    "max by (platform) ({}) * 1000",
                    sel_with("app_usage_daily_rollup", &[eq("field", "avg_latency_seconds")])
                ),
                "{{platform}} avg_latency_ms (backend's latest row)",
            ),
        ],
    )
    .w(8)
    .time_from("30d")
    .alerts(&["PulseDailyRollupStale"])
    .interval("1d");
}

/// JOIP's content, features, themes, layouts, revenue and referrals.
fn content(b: &mut Board) {
    b.row("Content, revenue and referrals (JOIP)");
    b.card(
        "Active users (30 d)",
        "JOIP \"Active Users\": distinct users with any tracked event in the last 30 days.",
        "short",
        &total("app_users_tracked_active_30d", &[]),
        &check_ok(&["app_users_tracked_active_30d"]),
    )
    .size(4, 6);
    b.card(
        "Content",
        "JOIP slideshow sessions and files in the media vaults: all, and those shared to the community.",
        "short",
        &format!("sum by ({}) ({})", by(&["item", "scope"]), sel("app_content_items")),
        &check_ok(&["app_content_items"]),
    )
    .size(6, 6)
    .named("{{item}} {{scope}}");
    b.card(
        "Community likes",
        "Likes on shared sessions and media, lifetime.",
        "short",
        &total("app_community_likes", &[]),
        &check_ok(&["app_community_likes"]),
    )
    .size(4, 6);
    b.card(
        "Revenue (lifetime)",
        "Credit purchases (estimated revenue) and paid subscription invoices (deprecated tier), in USD.",
        "currencyUSD",
        &format!("sum by ({}) ({})", by(&["stream"]), sel("app_revenue_usd")),
        &check_ok(&["app_revenue_usd"]),
    )
    .size(6, 6)
    .named("{{stream}}");
    b.card(
        "Referrals",
        "Referred users, and those with tracked activity in the last 30 days.",
        "short",
        &format!("sum by ({}) ({})", by(&["state"]), sel("app_referrals")),
        &check_ok(&["app_referrals"]),
    )
    .size(4, 6)
    .named("{{state}}");
    b.card(
        "Referral credits earned",
        "Referral rewards distributed, in credits, lifetime.",
        "short",
        &total("app_referral_credits_awarded", &[]),
        &check_ok(&["app_referral_credits_awarded"]),
    )
    .size(4, 6);
    b.card(
        "Referral conversion",
        "Referred users who became active over all referred users.",
        "percentunit",
        &format!(
            "max by ({}) ({})",
            by(&[]),
            sel("app_referral_conversion_ratio")
        ),
        &check_ok(&["app_referral_conversion_ratio"]),
    )
    .size(4, 6)
    .decimals(1);
    content_usage(b);
    content_people(b);
}

/// What JOIP's users use: themes, layouts, features, tracked events.
fn content_usage(b: &mut Board) {
    b.add(
        "piechart",
        "Caption themes",
        "Smart captions generated and regenerated by caption theme, lifetime (JOIP theme distribution).",
        "short",
        vec![json!({"expr": format!("sum by (theme) ({})", sel("app_caption_themes")),
                    "instant": true, "legendFormat": "{{theme}}"})],
    )
    .color("palette-classic")
    .options(json!({
        "pieType": "donut", "reduceOptions": {"calcs": ["lastNotNull"], "values": false},
        "legend": {"displayMode": "table", "placement": "right", "values": ["value", "percent"], "showLegend": true},
        "tooltip": {"mode": "single"},
    }));
    b.bars(
        "Babecock layouts",
        "Babecock compositions created and remixed, by layout, lifetime (JOIP layout distribution).",
        "short",
        vec![line(
            format!("sum by (action, layout) ({})", sel("app_babecock_layouts")),
            "{{action}} {{layout}}",
        )],
    );
    b.bars(
        "Feature usage (lifetime)",
        "Lifetime feature counters summed over users (user_usage_stats): sessions, captions, babecock images and remixes, media, logins.",
        "short",
        vec![line(format!("sum by (counter) ({})", sel("app_feature_usage")), "{{counter}}")],
    )
    .size(8, 10);
    b.bars(
        "Activity by feature (24 h)",
        "Tracked user events of the last 24 hours by feature (JOIP activity log).",
        "short",
        vec![line(
            format!("sum by (feature) ({})", sel("app_activity_events_24h")),
            "{{feature}}",
        )],
    )
    .size(8, 10);
    b.table(
        "Tracked events (24 h)",
        "Tracked user events of the last 24 hours by feature and action (user_activity_logs).",
        "short",
        vec![format!(
            "sum by (feature, action) ({})",
            sel("app_activity_events_24h")
        )],
    )
    .size(8, 10)
    .transformations(vec![
        organize(&[("Value", "events")], &[], &[]),
        sort_by("events", true),
    ]);
}

/// JOIP's most active users and top contributors.
fn content_people(b: &mut Board) {
    let features = [
        "sessions_created",
        "smart_captions_generated",
        "custom_captions_generated",
        "babecock_images_created",
        "media_uploaded",
    ];
    let mut exprs = vec![format!(
        "max by (user_id) ({})",
        sel("app_top_active_users_score")
    )];
    exprs.extend(features.iter().map(|f| {
        format!(
            "max by (user_id) ({})",
            sel_with("app_top_active_users_activity", &[eq("feature", f)])
        )
    }));
    exprs.push(format!(
        "max by (user_id) ({}) * 1000",
        sel("app_top_active_users_last_activity_timestamp_seconds")
    ));
    let feature_columns: Vec<(String, String)> = features
        .iter()
        .enumerate()
        .map(|(i, f)| {
            (
                format!("Value #{}", char::from(b'B' + i as u8)),
                f.replace('_', " "),
            )
        })
        .collect();
    let mut rename: Vec<(&str, &str)> = vec![("user_id", "user"), ("Value #A", "activity score")];
    rename.extend(
        feature_columns
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    rename.push(("Value #G", "last activity"));
    b.table(
        "Most active users (JOIP score)",
        "The five users with the highest total activity score, the score's breakdown by feature (sessions created, smart and custom captions, babecock images, media uploaded) and their last activity.",
        "short",
        exprs,
    )
    .size(16, 8)
    .transformations(vec![merge(), organize(&rename, &[], &[]), sort_by("activity score", true)])
    .overrides(vec![column("last activity", &[unit("dateTimeAsIso")])]);
    b.table(
        "Top contributors",
        "JOIP \"Top Contributors\": the five users whose shared sessions and media received the most likes.",
        "short",
        vec![format!("max by (user_id) ({})", sel("app_top_community_contributors_likes"))],
    )
    .size(8, 8)
    .transformations(vec![
        organize(&[("user_id", "user"), ("Value", "likes")], &[], &[]),
        sort_by("likes", true),
    ]);
}

/// The top AI users, recent incidents, and the alerts firing and fired.
fn incidents(b: &mut Board) {
    b.row("Top users and incidents");
    b.table(
        "Top 20 AI users (7 days)",
        "The 20 users with the most AI requests over 7 days: user id, display name, plan, last seen, request count. No emails unless the exporter config opts in.",
        "short",
        vec![
            format!("max by (user_id, username, plan) ({})", sel("app_top_ai_user_requests_7d")),
            format!(
                "max by (user_id) ({}) * 1000",
                sel("app_top_ai_user_last_seen_timestamp_seconds")
            ),
        ],
    )
    .w(16)
    .transformations(vec![
        merge(),
        organize(
            &[("user_id", "user id"), ("Value #A", "AI calls (7 d)"), ("Value #B", "last seen")],
            &[],
            &["user_id", "username", "plan", "Value #B", "Value #A"],
        ),
        sort_by("AI calls (7 d)", true),
    ])
    .overrides(vec![column("last seen", &[unit("dateTimeAsIso")])]);
    b.table(
        "Recent incidents (24 h)",
        "AI provider errors, timeouts and safety rejections, and failed preview builds, of the last 24 hours.",
        "short",
        vec![
            format!(
                r#"label_replace(sum by (error) ({}), "incident", "AI $1", "error", "(.*)")"#,
                sel("app_ai_errors_24h")
            ),
            format!(
                r#"label_replace(sum({}), "incident", "preview build failed", "", "")"#,
                sel("app_preview_failures_24h")
            ),
        ],
    )
    .w(8)
    .transformations(vec![
        merge(),
        organize(&[("incident", "incident"), ("Value", "count (24 h)")], &["error"], &[]),
        sort_by("count (24 h)", true),
    ])
    .overrides(vec![column(
        "count (24 h)",
        &[
            coloured(steps(&[("green", Value::Null), ("orange", json!(1))])),
            cell("color-text"),
        ],
    )]);
    alerts_firing_and_history(b);
}

/// The alerts firing now and their history.
fn alerts_firing_and_history(b: &mut Board) {
    b.add(
        "alertlist",
        "Firing alerts",
        "Alerts firing or pending now (Prometheus alert rules; the Watchdog left out), most important first. Silences and notification groups: Alerting > Groups with the Alertmanager data source.",
        "none",
        Vec::new(),
    )
    .size(8, 10)
    .links(vec![json!({"title": "Alertmanager groups and silences",
                       "url": "/alerting/groups?alertmanager=Alertmanager"})])
    .options(json!({
        "viewMode": "list", "groupMode": "default", "groupBy": [], "maxItems": 20, "sortOrder": 3,
        "dashboardAlerts": false, "alertName": "", "alertInstanceLabelFilter": "{alertname!=\"Watchdog\"}",
        "datasource": "Prometheus", "showInstances": true, "folder": null,
        "stateFilter": {"firing": true, "pending": true, "noData": false, "normal": false, "error": true},
    }));
    // Dropped: every other label of the alert is a column.
    let history_labels = "alertstate, job, tier";
    let firing = format!(r#"ALERTS{{alertstate="firing", alertname!="Watchdog", {FILTER}}}"#);
    b.table(
        "Alert history",
        "Every alert that fired in the dashboard's time range (the Watchdog left out): when it first and last fired in the range and for how long, at one-minute resolution.",
        "short",
        vec![
            format!("min without ({history_labels}) (min_over_time(timestamp({firing})[$__range:1m])) * 1000"),
            format!("max without ({history_labels}) (max_over_time(timestamp({firing})[$__range:1m])) * 1000"),
            format!("sum without ({history_labels}) (count_over_time({firing}[$__range:1m])) * 60"),
        ],
    )
    .size(16, 10)
    .transformations(vec![
        merge(),
        organize(
            &[
                ("alertname", "alert"),
                ("Value #A", "first fired"),
                ("Value #B", "last fired"),
                ("Value #C", "firing for"),
            ],
            &[],
            &[
                "alertname", "severity", "platform", "instance", "source", "queue", "pool",
                "Value #A", "Value #B", "Value #C",
            ],
        ),
        sort_by("last fired", true),
    ])
    .overrides(vec![
        column("first fired", &[unit("dateTimeAsIso")]),
        column("last fired", &[unit("dateTimeAsIso")]),
        column("firing for", &[unit("s")]),
        column(
            "severity",
            &[
                mapped(vec![value_map(&[
                    ("critical", "", "red"),
                    ("warning", "", "orange"),
                    ("info", "", "blue"),
                ])]),
                cell("color-text"),
            ],
        ),
    ]);
}

/// The admin overview.
pub(super) fn board() -> Board {
    let mut b = Board::new(
        "pulse-admin-overview",
        "Admin overview",
        "The platforms' admin analytics view (HiveSync spec section 4, JOIP and Hayon analytics): business health against the usual week, summary cards, usage charts, growth, content, top users and incidents. Filter by platform and exporter above.",
    );
    business_health(&mut b);
    summary(&mut b);
    charts(&mut b);
    growth(&mut b);
    content(&mut b);
    incidents(&mut b);
    b
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_alert_line_is_the_share_the_alert_fires_under() {
        let ratio = super::business_ratio();
        assert!(ratio > 0.0 && ratio < 1.0, "{ratio}");
    }
}
