#!/usr/bin/env python3
"""Writes grafana/dashboards/*.json: the admin overview, platform health, and queues & workers.

The JSON files are committed; edit this script and run it (`python3 scripts/dashboards.py`)
rather than the JSON, so the three dashboards keep one style: a `datasource` variable, stable
uids, a unit and a description on every panel, cards that say DEGRADED when their check fails
and NO DATA when nothing arrives (never green on no data), 30 s refresh.
"""
import json
import os
import sys

DS = {"type": "prometheus", "uid": "${datasource}"}
# `scripts/dashboards.py [DIR]`: DIR defaults to grafana/dashboards (tests write elsewhere and compare).
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "grafana", "dashboards")

# A card's value is -1 when the check behind it fails: mapped to DEGRADED.
DEGRADED_MAPPING = [
    {"type": "value", "options": {"-1": {"text": "DEGRADED", "color": "red", "index": 0}}},
]
NEUTRAL = {"mode": "absolute", "steps": [{"color": "blue", "value": None}]}


def check_ok(check):
    """1 while every run of `check` (a name or a regex) succeeds and its source is up, else 0."""
    op = "=~" if any(c in check for c in ".*") else "="
    return (f"min(pulse_check_success{{check{op}\"{check}\"}} "
            f"* on (instance, source) group_left () pulse_source_up)")


def kind_ok(kind):
    """1 while every source of `kind` is up, else 0."""
    return f'min(pulse_source_up{{kind="{kind}"}})'


def guard(expr, ok):
    """`expr` while `ok` is 1; -1 (shown as DEGRADED) while it is 0; nothing without data."""
    return f"({expr}) and on () ({ok} == 1)\nor on () ({ok} == 0) - 1"


class Board:
    def __init__(self, uid, title, description):
        self.uid, self.title, self.description = uid, title, description
        self.panels, self.y, self.x, self.row_h, self.next_id = [], 0, 0, 0, 1

    def _place(self, w, h):
        if self.x + w > 24:
            self.x, self.y = 0, self.y + self.row_h
            self.row_h = 0
        pos = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos

    def row(self, title):
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        self.panels.append({"type": "row", "title": title, "id": self._id(), "collapsed": False,
                            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}, "panels": []})
        self.y += 1

    def _id(self):
        self.next_id += 1
        return self.next_id - 1

    def add(self, kind, title, description, unit, targets, w=8, h=8, **extra):
        panel = {
            "type": kind, "title": title, "description": description, "id": self._id(),
            "datasource": DS, "gridPos": self._place(w, h),
            "targets": [dict(t, refId=chr(65 + i), datasource=DS) for i, t in enumerate(targets)],
            "fieldConfig": {"defaults": {"unit": unit, "noValue": "NO DATA",
                                         "thresholds": extra.pop("thresholds", NEUTRAL),
                                         "mappings": extra.pop("mappings", []),
                                         "color": {"mode": extra.pop("color_mode", "thresholds")}},
                            "overrides": extra.pop("overrides", [])},
            "options": extra.pop("options", {}),
        }
        panel.update(extra)
        self.panels.append(panel)

    def card(self, title, description, unit, expr, check, decimals=None, w=4, h=5, legend=None):
        """A card: the value; DEGRADED while `check` fails or its source is down (the source's
        health probe runs more often than most checks); NO DATA without data. With a `legend`
        (e.g. "{{platform}}") it shows one value per series."""
        self.add("stat", title, description, unit,
                 [{"expr": guard(expr, check_ok(check)), "instant": True, "legendFormat": legend or title}], w=w, h=h,
                 mappings=DEGRADED_MAPPING,
                 options={"reduceOptions": {"calcs": ["lastNotNull"], "values": False},
                          "colorMode": "background", "graphMode": "none",
                          "textMode": "value_and_name" if legend else "value"})
        if decimals is not None:
            self.panels[-1]["fieldConfig"]["defaults"]["decimals"] = decimals

    def ts(self, title, description, unit, targets, w=12, h=8, stack=False, time_from=None):
        custom = {"fillOpacity": 20 if stack else 5, "lineWidth": 1, "showPoints": "never"}
        if stack:
            custom["stacking"] = {"mode": "normal", "group": "A"}
        self.add("timeseries", title, description, unit, targets, w=w, h=h, color_mode="palette-classic")
        self.panels[-1]["fieldConfig"]["defaults"]["custom"] = custom
        if time_from:
            self.panels[-1]["timeFrom"] = time_from

    def number(self, title, description, unit, targets, w=6, h=6, text="value_and_name"):
        """A plain stat: one or more numbers with their legends, no colour. Each target's
        `ok` expression guards it: DEGRADED while that is 0."""
        self.add("stat", title, description, unit,
                 [dict({k: v for k, v in t.items() if k != "ok"}, expr=guard(t["expr"], t["ok"]), instant=True)
                  for t in targets], w=w, h=h, mappings=DEGRADED_MAPPING,
                 options={"reduceOptions": {"calcs": ["lastNotNull"], "values": False}, "colorMode": "none",
                          "graphMode": "none", "textMode": text})

    def up_stat(self, kind, w=6):
        self.add("stat", f"{kind} up", f"1 while the {kind} source's health probe succeeds (pulse_source_up); DOWN when it fails, NO DATA when nothing is scraped.",
                 "none", [{"expr": f"pulse_source_up{{kind=\"{kind}\"}}", "instant": True, "legendFormat": "{{source}}"}],
                 w=w, h=6, mappings=[{"type": "value", "options": {
                     "1": {"text": "UP", "color": "green", "index": 0},
                     "0": {"text": "DOWN", "color": "red", "index": 1}}}],
                 options={"reduceOptions": {"calcs": ["lastNotNull"], "values": False},
                          "colorMode": "background", "graphMode": "none", "textMode": "value_and_name"})

    def table(self, title, description, unit, targets, w=12, h=9, transformations=None, overrides=None):
        self.add("table", title, description, unit,
                 [dict(t, instant=True, format="table") for t in targets], w=w, h=h,
                 transformations=transformations or [], overrides=overrides or [],
                 options={"showHeader": True})

    def json(self, links):
        return {
            "uid": self.uid, "title": self.title, "description": self.description,
            "tags": ["pulse-exporter"], "timezone": "browser", "editable": True,
            "schemaVersion": 39, "version": 1, "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"},
            "timepicker": {"refresh_intervals": ["30s", "1m", "5m", "15m"]},
            "templating": {"list": [{
                "name": "datasource", "label": "Prometheus", "type": "datasource",
                "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "regex": "",
                "options": []}]},
            "annotations": {"list": []},
            "links": [{"title": t, "type": "link", "url": f"/d/{u}", "icon": "dashboard"} for u, t in links if u != self.uid],
            "panels": self.panels,
        }


def admin():
    b = Board("pulse-admin-overview", "Admin overview",
              "The platform's admin analytics view (HiveSync spec section 4): summary cards, usage charts, top users and incidents.")
    b.row("Summary")
    b.card("Online users now", "Distinct users with an open WebSocket session or a heartbeat in the last 2 minutes.", "short",
           "sum(app_online_users)", "app_online_users")
    b.card("AI requests (last hour)", "AI requests created in the last 60 minutes (sliding window).", "short",
           'sum(app_ai_requests{window="1h"})', "app_ai_requests")
    # Redis deletes an empty list, so an absent queue key reads 0 while its check succeeds.
    b.card("AI queue depth", "Jobs waiting in the AI task queue (LLEN; an empty queue has no key and reads 0).", "short",
           'sum(app_queue_depth{queue="ai"}) or vector(0)', "ai-queue")
    b.card("Preview queue depth", "Jobs waiting in the preview build queue (LLEN; an empty queue has no key and reads 0).", "short",
           'sum(app_queue_depth{queue="preview"}) or vector(0)', "preview-queue")
    b.card("Paid vs free", "Paid accounts per free account (recording rule app:paid_free_ratio).", "percentunit",
           "app:paid_free_ratio", "app_users_by_plan", decimals=1)
    b.card("DAU", "Distinct users active in the last 24 hours: a login, AI request, preview request or live-view join.", "short",
           "app:dau", "app_active_users")
    b.row("Charts")
    b.ts("AI requests per hour (24 h)", "AI requests created in the sliding hour, over the last 24 hours.", "short",
         [{"expr": 'sum(app_ai_requests{window="1h"})', "legendFormat": "requests / hour"}], time_from="24h")
    b.ts("DAU (14 days) by plan", "Daily active users by plan class, over the last 14 days (recording rule app:dau_by_plan).", "short",
         [{"expr": "app:dau_by_plan", "legendFormat": "{{plan}}"}], stack=True, time_from="14d")
    b.add("bargauge", "Users by plan", "Accounts by plan class: paid, free, trial, and trials that ended without an upgrade.", "short",
          [{"expr": "sum by (plan) (app_users_by_plan)", "instant": True, "legendFormat": "{{plan}}"}], w=8, h=8,
          options={"orientation": "horizontal", "displayMode": "basic",
                   "reduceOptions": {"calcs": ["lastNotNull"], "values": False}})
    b.ts("Average AI latency", "Average seconds from AI job created to completed, over jobs completed in each window.", "s",
         [{"expr": 'avg by (window) (app_job_latency_avg_seconds{queue="ai"})', "legendFormat": "{{window}}"}], w=8)
    b.ts("AI requests per user (24 h)", "Median, p90 and max of AI requests per user over the last 24 hours, across users with at least one.", "short",
         [{"expr": "max by (stat) (app_ai_requests_per_user_24h)", "legendFormat": "{{stat}}"}], w=8)
    b.ts("AI errors (24 h) by kind", "AI requests of the last 24 hours that failed: provider errors, timeouts, safety rejections.", "short",
         [{"expr": "sum by (error) (app_ai_errors_24h)", "legendFormat": "{{error}}"}], w=8)
    b.ts("Online devices by type", "Online sessions by device type.", "short",
         [{"expr": "sum by (device) (app_online_devices)", "legendFormat": "{{device}}"}], w=8, stack=True)
    b.number("Estimated AI cost per month (ESTIMATE)",
             "Estimates only: tokens of the last 30 days at the configured price per 1k tokens, and every GPU worker up now running a whole month at its configured hourly price.",
             "currencyUSD",
             [{"expr": 'sum(app_ai_cost_estimate_usd{basis="tokens"})', "legendFormat": "tokens (30 d)",
               "ok": check_ok("app_ai_cost_estimate_usd")},
              {"expr": "sum(app:ai_cost_estimate_usd:instance_hours_month)", "legendFormat": "GPU instance hours",
               "ok": check_ok("heartbeat:gpu")}], w=8, h=8)
    b.row("Growth and activity")
    b.card("Registered users", "All accounts, whatever their plan or status, per platform.", "short",
           "sum by (platform) (app_users_registered)", "app_users_registered", w=6, h=6, legend="{{platform}}")
    b.card("Signups (30 d)", "Accounts created in the last 30 days, per platform.", "short",
           "sum by (platform) (app_users_signups_30d)", "app_users_signups_30d", w=6, h=6, legend="{{platform}}")
    b.card("Monthly growth", "Accounts created in the last 30 days over the accounts that existed before them, per platform.", "percentunit",
           "max by (platform) (app_users_monthly_growth_ratio)", "app_users_monthly_growth_ratio", w=6, h=6,
           legend="{{platform}}", decimals=1)
    b.card("Users near their post limit", "Active accounts that used at least 80 % of their plan's post limit.", "short",
           "sum(app_users_near_post_limit)", "app_users_near_post_limit", w=6, h=6)
    b.ts("MAU (30 days) by plan", "Distinct users active in the last 30 days by plan class (recording rule app:mau_by_plan).", "short",
         [{"expr": "app:mau_by_plan", "legendFormat": "{{plan}}"}], w=8, stack=True)
    b.add("bargauge", "Activity by feature (24 h)", "Tracked user events of the last 24 hours by feature (JOIP activity log).", "short",
          [{"expr": "sum by (feature) (app_activity_events_24h)", "instant": True, "legendFormat": "{{feature}}"}], w=8, h=8,
          options={"orientation": "horizontal", "displayMode": "basic",
                   "reduceOptions": {"calcs": ["lastNotNull"], "values": False}})
    b.add("bargauge", "Posts against plan limits", "Posts created and the post limits they count against, summed per plan.", "short",
          [{"expr": 'sum by (plan, field) (app_posts_usage{field=~"posts_.*"})', "instant": True, "legendFormat": "{{plan}} {{field}}"}],
          w=8, h=8, options={"orientation": "horizontal", "displayMode": "basic",
                             "reduceOptions": {"calcs": ["lastNotNull"], "values": False}})
    b.ts("Daily roll-ups", "The usage_analytics_daily figures (recording rules usage_daily:*), one point per day: each day's value is read at its end.", "short",
         [{"expr": "usage_daily:dau", "legendFormat": "dau"},
          {"expr": "usage_daily:mau", "legendFormat": "mau"},
          {"expr": "usage_daily:ai_requests", "legendFormat": "ai_requests"},
          {"expr": "usage_daily:preview_requests", "legendFormat": "preview_requests"},
          {"expr": "usage_daily:max_queue_depth", "legendFormat": "max_queue_depth"}], w=16, time_from="30d")
    b.panels[-1]["interval"] = "1d"
    b.table("Most active users (JOIP score)", "The five users with the highest total activity score: sessions created, smart and custom captions, babecock images and media uploaded.", "short",
            [{"expr": "max by (user_id) (app_top_active_users_score)"}], w=8, h=8,
            transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True},
                                                            "renameByName": {"Value": "activity score"}}},
                             {"id": "sortBy", "options": {"sort": [{"field": "activity score", "desc": True}]}}])
    b.row("Content, revenue and referrals")
    b.card("Content", "JOIP slideshow sessions and files in the media vaults: all, and those shared to the community.", "short",
           "sum by (item, scope) (app_content_items)", "app_content_items", w=6, h=6, legend="{{item}} {{scope}}")
    b.card("Community likes", "Likes on shared sessions and media, lifetime.", "short",
           "sum(app_community_likes)", "app_community_likes", w=4, h=6)
    b.card("Revenue (lifetime)", "Credit purchases (estimated revenue) and paid subscription invoices (deprecated tier), in USD.", "currencyUSD",
           "sum by (stream) (app_revenue_usd)", "app_revenue_usd", w=6, h=6, legend="{{stream}}")
    b.card("Referrals", "Referred users, and those with tracked activity in the last 30 days.", "short",
           "sum by (state) (app_referrals)", "app_referrals", w=4, h=6, legend="{{state}}")
    b.card("Referral conversion", "Referred users who became active over all referred users.", "percentunit",
           "max(app_referral_conversion_ratio)", "app_referral_conversion_ratio", w=4, h=6, decimals=1)
    b.row("Tables")
    b.table("Top 20 AI users (7 days)", "The 20 users with the most AI requests over 7 days: user id, plan, last seen, request count. No emails unless the exporter config opts in.",
            "short",
            [{"expr": "max by (user_id, plan) (app_top_ai_user_requests_7d)"},
             {"expr": "max by (user_id) (app_top_ai_user_last_seen_timestamp_seconds) * 1000"}],
            transformations=[{"id": "merge", "options": {}},
                             {"id": "organize", "options": {"excludeByName": {"Time": True},
                                                            "renameByName": {"Value #A": "AI calls (7 d)", "Value #B": "last seen"}}},
                             {"id": "sortBy", "options": {"sort": [{"field": "AI calls (7 d)", "desc": True}]}}],
            overrides=[{"matcher": {"id": "byName", "options": "last seen"},
                        "properties": [{"id": "unit", "value": "dateTimeAsIso"}]}])
    b.table("Recent incidents", "Alerts firing now (except the Watchdog), AI errors by kind and failed preview builds of the last 24 hours.", "short",
            [{"expr": 'ALERTS{alertstate="firing", alertname!="Watchdog"}'},
             {"expr": 'label_replace(sum by (error) (app_ai_errors_24h), "alertname", "AI $1 (24 h)", "error", "(.*)")'},
             {"expr": 'label_replace(sum(app_preview_failures_24h), "alertname", "Preview failures (24 h)", "", "")'}],
            transformations=[{"id": "merge", "options": {}},
                             {"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True}}}])
    return b


def health():
    b = Board("pulse-platform-health", "Platform health",
              "One row per source kind, following the Hayon checklist (MongoDB, Redis, RabbitMQ workers, Stripe webhooks, S3 uploads) plus Postgres and log files: up, probe latency, failure reasons, key numbers.")

    def common(kind, label):
        b.row(label)
        b.up_stat(kind)
        b.ts(f"{kind} probe latency", f"Duration of the last health probe of each {kind} source.", "s",
             [{"expr": f'pulse_source_probe_duration_seconds{{kind="{kind}"}}', "legendFormat": "{{source}}"}], w=9, h=6)
        b.ts(f"{kind} failures by reason", f"Failed health probes of {kind} sources per interval, by reason (connect, timeout, auth, query, …).", "short",
             [{"expr": f'sum by (source, reason) (increase(pulse_source_probe_failures_total{{kind="{kind}"}}[$__rate_interval]))',
               "legendFormat": "{{source}} {{reason}}"}], w=9, h=6)

    common("postgres", "Postgres")
    b.ts("Postgres connections by state", "Client connections by state, against max_connections.", "short",
         [{"expr": "sum by (source, state) (pulse_postgres_connections)", "legendFormat": "{{source}} {{state}}"},
          {"expr": "pulse_postgres_max_connections", "legendFormat": "{{source}} max"}])
    b.ts("Postgres database size", "Size of the database each source connects to.", "bytes",
         [{"expr": "pulse_postgres_database_size_bytes", "legendFormat": "{{source}} {{database}}"}])
    common("mongodb", "MongoDB")
    b.ts("MongoDB connections", "Current connections and connections still available.", "short",
         [{"expr": "pulse_mongodb_connections", "legendFormat": "{{source}} {{state}}"}], w=24)
    common("redis", "Redis")
    b.ts("Redis memory", "Memory used, against maxmemory (0 = no limit).", "bytes",
         [{"expr": "pulse_redis_memory_used_bytes", "legendFormat": "{{source}} used"},
          {"expr": "pulse_redis_memory_max_bytes > 0", "legendFormat": "{{source}} max"}])
    b.ts("Redis clients", "Connected and blocked clients.", "short",
         [{"expr": "pulse_redis_connected_clients", "legendFormat": "{{source}} connected"},
          {"expr": "pulse_redis_blocked_clients", "legendFormat": "{{source}} blocked"}])
    common("rabbitmq", "RabbitMQ workers")
    b.ts("RabbitMQ messages by vhost", "Ready and unacked messages in each vhost's selected queues.", "short",
         [{"expr": "sum by (source, vhost, state) (pulse_rabbitmq_vhost_messages)", "legendFormat": "{{vhost}} {{state}}"}])
    b.ts("RabbitMQ consumers", "Consumers per queue: a queue with messages and 0 consumers means its workers are down.", "short",
         [{"expr": 'sum by (queue) (pulse_rabbitmq_queue_consumers{dead_letter="false"})', "legendFormat": "{{queue}}"}])
    common("stripe", "Stripe webhooks")
    b.add("stat", "Stripe webhook endpoints", "1 (enabled) or 0 (disabled) per webhook endpoint; a disabled endpoint receives nothing.", "none",
          [{"expr": guard("pulse_stripe_webhook_endpoint_enabled", check_ok("webhook_endpoints")),
            "instant": True, "legendFormat": "{{host}} {{endpoint}}"}], w=12, h=6,
          mappings=[{"type": "value", "options": {"1": {"text": "ENABLED", "color": "green", "index": 0},
                                                  "0": {"text": "DISABLED", "color": "red", "index": 1},
                                                  "-1": {"text": "DEGRADED", "color": "red", "index": 2}}}],
          options={"reduceOptions": {"calcs": ["lastNotNull"], "values": False}, "colorMode": "background",
                   "graphMode": "none", "textMode": "value_and_name"})
    b.ts("Stripe undelivered events", "Events of the lookback window not yet delivered to any endpoint, by type.", "short",
         [{"expr": "sum by (event_type) (pulse_stripe_undelivered_events)", "legendFormat": "{{event_type}}"},
          {"expr": "sum(pulse_stripe_events)", "legendFormat": "all events in the window"}], h=6)
    common("s3", "S3 media uploads")
    b.ts("S3 canary steps", "1 when the canary's put, get (read back and compared) and delete worked in its last run.", "bool",
         [{"expr": "pulse_s3_canary_success", "legendFormat": "{{bucket}} {{step}}"}])
    b.ts("S3 canary duration", "Duration of each canary step.", "s",
         [{"expr": "pulse_s3_canary_duration_seconds", "legendFormat": "{{bucket}} {{step}}"}])
    common("logfile", "Log files")
    b.ts("Log lines", "Lines read per interval, parsed (JSON) or invalid.", "short",
         [{"expr": "sum by (source, result) (increase(pulse_logfile_lines_total[$__rate_interval]))", "legendFormat": "{{source}} {{result}}"}], w=24)
    b.row("Checks")
    b.table("Checks", "Every check: 1 when its last run succeeded, with its duration and the series it serves.", "short",
            [{"expr": "max by (source, check) (pulse_check_success)"},
             {"expr": "max by (source, check) (pulse_check_duration_seconds)"},
             {"expr": "max by (source, check) (pulse_check_series)"}],
            w=24, h=10,
            transformations=[{"id": "merge", "options": {}},
                             {"id": "organize", "options": {"excludeByName": {"Time": True},
                                                            "renameByName": {"Value #A": "ok", "Value #B": "duration (s)", "Value #C": "series"}}}])
    return b


def queues():
    b = Board("pulse-queues-workers", "Queues and workers",
              "Queue depth, consumers, dead letters and job latency; CPU and GPU worker heartbeats (spot and on-demand).")
    b.row("Queues")
    b.ts("Job queue depth", "Jobs waiting in the Redis AI and preview queues.", "short",
         [{"expr": "sum by (queue) (app_queue_depth)", "legendFormat": "{{queue}}"}])
    b.ts("RabbitMQ queue depth", "Ready and unacked messages per queue (dead-letter queues excluded).", "short",
         [{"expr": 'sum by (queue, state) (pulse_rabbitmq_queue_messages{dead_letter="false"})', "legendFormat": "{{queue}} {{state}}"}])
    b.ts("Consumers", "Consumers attached to each queue.", "short",
         [{"expr": 'sum by (queue) (pulse_rabbitmq_queue_consumers{dead_letter="false"})', "legendFormat": "{{queue}}"}], w=8)
    b.add("stat", "Dead letters", "Messages in dead-letter queues: work that failed after its retries.", "short",
          [{"expr": guard('sum by (queue) (pulse_rabbitmq_queue_messages{dead_letter="true"})', kind_ok("rabbitmq")),
            "instant": True, "legendFormat": "{{queue}}"}],
          w=8, h=8, thresholds={"mode": "absolute", "steps": [{"color": "blue", "value": None}, {"color": "orange", "value": 1}]},
          mappings=DEGRADED_MAPPING,
          options={"reduceOptions": {"calcs": ["lastNotNull"], "values": False}, "colorMode": "background",
                   "graphMode": "area", "textMode": "value_and_name"})
    b.ts("Job latency", "Average seconds from job created to completed, over jobs completed in the last 1 m, 15 m and 1 h.", "s",
         [{"expr": "avg by (queue, window) (app_job_latency_avg_seconds)", "legendFormat": "{{queue}} {{window}}"}], w=8)
    b.row("Workers")
    b.number("Workers up by pool", "Workers that beat within max_age, of the workers known in each pool.", "short",
             [{"expr": "sum by (pool) (pulse_worker_pool_workers_up)", "legendFormat": "{{pool}} up",
               "ok": check_ok("heartbeat:.*")},
              {"expr": "sum by (pool) (pulse_worker_pool_workers)", "legendFormat": "{{pool}} known",
               "ok": check_ok("heartbeat:.*")}], w=8, h=8)
    b.ts("Heartbeat age", "Seconds since each worker's last heartbeat.", "s",
         [{"expr": "time() - pulse_worker_last_heartbeat_timestamp_seconds", "legendFormat": "{{pool}} {{worker}}"}], w=16)
    b.table("Worker status", "Each worker: up (1) or offline (0), and what it reports: state (healthy, active, idle), instance type, spot or on-demand.", "short",
            [{"expr": "max by (pool, worker) (pulse_worker_up)"},
             {"expr": "max by (pool, worker, state, instance_type, lifecycle) (pulse_worker_info)"}],
            w=24, transformations=[{"id": "merge", "options": {}},
                                   {"id": "organize", "options": {"excludeByName": {"Time": True, "Value #B": True},
                                                                  "renameByName": {"Value #A": "up"}}}])
    return b


def main():
    boards = [admin(), health(), queues()]
    links = [(b.uid, b.title) for b in boards]
    os.makedirs(OUT, exist_ok=True)
    for b in boards:
        path = os.path.join(OUT, b.uid.replace("pulse-", "") + ".json")
        with open(path, "w") as f:
            json.dump(b.json(links), f, indent=2, sort_keys=False)
            f.write("\n")
        print(path)


if __name__ == "__main__":
    main()
