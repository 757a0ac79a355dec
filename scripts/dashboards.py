#!/usr/bin/env python3
"""Writes grafana/dashboards/*.json: the admin overview, platform health, queues & workers, and
query latency.

The JSON files are committed; edit this script and run it (`python3 scripts/dashboards.py`)
rather than the JSON, so the three dashboards keep one style: a `datasource` variable and the
`platform` and `instance` variables that filter every query, stable uids, a unit and a
description on every panel, cards that say DEGRADED when the check or source behind *them*
fails (same exporter, same source: another platform's outage never greys a card) and NO DATA,
in grey, when nothing arrives (never green on no data), thresholds where colour carries
meaning, runbook links on the panels an alert watches, 30 s refresh. Every query folds the
replicas of a shard together (`max without (pod)`, see per_replica()), as the rules do, so
on Kubernetes with two replicas per shard a sum still counts each source once.

How a panel looks (the replica fold, the DEGRADED/NO DATA guard and mappings, units from
metric names, the runbook base) is read from grafana/style.json, which pulse-exporter compiles
in for the dashboards it generates from a user's config (`pulse-exporter dashboards`): one
definition for both.

With a directory argument it writes the dashboards there instead of grafana/dashboards (the
tests compare them). The alerts' runbook_url takes the same base from grafana/style.json when
pulse-exporter renders them (src/generate/bundle.rs).
"""
import json
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
with open(os.path.join(ROOT, "grafana", "style.json")) as f:
    STYLE = json.load(f)

# Where alerts/runbook.md can be browsed: panel links and the alerts' runbook_url are this
# plus `#<alert name in lower case>`.
RUNBOOK_BASE = STYLE["runbook_base"]
DS = {"type": "prometheus", "uid": "${datasource}"}
# `scripts/dashboards.py [DIR]`: DIR defaults to grafana/dashboards (tests write elsewhere and compare).
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "grafana", "dashboards")
ALERTS_FILE = os.path.join(ROOT, "alerts", "pulse-alerts.yml")

# Every query is filtered by the dashboard's variables (both "All" = `.*` by default).
FILTER = 'platform=~"$platform", instance=~"$instance"'
# What a card keeps: the exporter (platform and instance are target labels). Business metrics
# carry no `source` label: the checks named in a card's guard pin the source within its
# exporter. Built-in metrics that do carry `source` (worker pools) keep it with by_source().
KEYS = ["platform", "instance"]

# A card's value is -1 when the check behind it fails: mapped to DEGRADED (purple: no value
# uses it). No data at all (or NaN) reads NO DATA in grey, apart from every value's colour.
DEGRADED = STYLE["degraded"]
NO_DATA = STYLE["no_data"]
DEGRADED_MAPPING = [DEGRADED]


def steps(*pairs):
    """Absolute thresholds: ("green", None), ("orange", 100), …"""
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in pairs]}


NEUTRAL = steps(("blue", None))              # a count with no good or bad value
QUEUE_DEPTH = steps(("green", None), ("orange", 100), ("red", 500))
JOB_AGE = steps(("green", None), ("orange", 300), ("red", 600))          # PulseOldestJobTooOld: 600 s
HEARTBEAT_AGE = steps(("green", None), ("orange", 60), ("red", 120))     # max_age 2m
DEAD_LETTERS = steps(("green", None), ("orange", 1), ("red", 100))
ERROR_RATE = steps(("green", None), ("orange", 0.02), ("red", 0.05))
LATENCY = steps(("green", None), ("orange", 30), ("red", 60))            # PulseJobLatencyHigh: 60 s
PROBE_LATENCY = steps(("green", None), ("orange", 1), ("red", 2))        # PulseSourceSlow: p90 > 2 s
CONSUMERS = steps(("red", None), ("green", 1))
CAPACITY = steps(("red", None), ("green", 1))                            # workers up / min_up

UP_MAPPING = [STYLE["up"]]
OK_MAPPING = [STYLE["ok"]]


def unit_of(metric):
    """The Grafana unit a metric's name implies (`_seconds` s, `_bytes` bytes, ...)."""
    return next((u for suffix, u in STYLE["units"] if metric.endswith(suffix)), STYLE["default_unit"])


def eq(label, value):
    return f'{label}="{value}"'


def rx(label, value):
    return f'{label}=~"{value}"'


def raw(metric, *matchers):
    """`metric{matchers…, platform=~"$platform", instance=~"$instance"}`: for range vectors
    (`rate(…[…])`, `offset`), whose result per_replica() folds."""
    return metric + "{" + ", ".join([*matchers, FILTER]) + "}"


def per_replica(expr):
    """`expr` with the replicas of a shard folded together: on Kubernetes two replicas of a
    shard serve the same series, told apart by `pod` (the alerting and recording rules fold
    them the same way), so a sum would count them twice and a `group_left` join would fail.
    Without a `pod` label this changes nothing."""
    return STYLE["fold"].replace("{expr}", expr)


def sel(metric, *matchers):
    """raw() with the replicas folded: what every instant query starts from."""
    return per_replica(raw(metric, *matchers))


def over(fn, metric, *matchers):
    """`fn(metric[$__rate_interval])` per series, replicas folded (fn: rate, increase)."""
    return per_replica(f"{fn}({raw(metric, *matchers)}[$__rate_interval])")


def by(*extra):
    """The by-clause of a card: platform, instance and `extra` labels."""
    return ", ".join(KEYS + list(extra))


def by_source(*extra):
    """The by-clause of a built-in metric's card: platform, instance, source and `extra`."""
    return ", ".join(KEYS + ["source"] + list(extra))


def check_ok(*checks):
    """Per exporter: 1 while every run of the named checks (names or regexes) succeeds and
    their source is up, else 0. The check names pin the source: another source or another
    exporter failing never turns it 0."""
    check = "|".join(checks)
    op = "=~" if any(c in check for c in ".*|") else "="
    success = sel("pulse_check_success", f'check{op}"{check}"')
    return f"min by ({by()}) ({success} * on (instance, source) group_left () {sel('pulse_source_up')})"


def source_ok(kind):
    """Per exporter: 1 while the health probes of its sources of `kind` succeed, else 0."""
    return f"min by ({by()}) ({sel('pulse_source_up', eq('kind', kind))})"


def pool_ok():
    """Per exporter, source and pool: 1 while the pool's heartbeat check (`heartbeat:<pool>`)
    succeeds and its source is up, else 0."""
    success = sel("pulse_check_success", 'check=~"heartbeat:.*"')
    return (f'min by ({by_source("pool")}) (label_replace({success} * on (instance, source) group_left () '
            f'{sel("pulse_source_up")}, "pool", "$1", "check", "heartbeat:(.*)"))')


def guard(expr, ok, on="instance"):
    """`expr` where `ok` is 1 for the same exporter (and the `on` labels); -1 (DEGRADED) where it is 0;
    nothing without data. `expr` must keep the `on` labels (and `platform` for legends)."""
    return STYLE["guard"].replace("{expr}", expr).replace("{ok}", ok).replace("{on}", on)


def runbook(*alerts):
    """Panel links to the runbook sections of `alerts`."""
    return [{"title": f"Runbook: {a}", "url": f"{RUNBOOK_BASE}#{a.lower()}", "targetBlank": True} for a in alerts]


def column(name, unit=None, mappings=None, thresholds=None, cell=None, width=None):
    """A table column override (by the column's display name)."""
    props = []
    if unit:
        props.append({"id": "unit", "value": unit})
    if mappings:
        props.append({"id": "mappings", "value": mappings})
    if thresholds:
        props.append({"id": "thresholds", "value": thresholds})
    if cell:
        props.append({"id": "custom.cellOptions", "value": {"type": cell}})
    if width:
        props.append({"id": "custom.width", "value": width})
    return {"matcher": {"id": "byName", "options": name}, "properties": props}


def organize(rename, exclude=(), order=None):
    opts = {"excludeByName": {k: True for k in ("Time", *exclude)}, "renameByName": rename}
    if order:
        opts["indexByName"] = {k: i for i, k in enumerate(order)}
    return {"id": "organize", "options": opts}


MERGE = {"id": "merge", "options": {}}


def sort_by(field, desc=True):
    return {"id": "sortBy", "options": {"sort": [{"field": field, "desc": desc}]}}


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

    def add(self, kind, title, description, unit, targets, w=8, h=8, alerts=(), **extra):
        mappings = extra.pop("mappings", [])
        if kind in ("stat", "bargauge", "gauge", "piechart"):
            mappings = mappings + [NO_DATA]
        panel = {
            "type": kind, "title": title, "description": description, "id": self._id(),
            "datasource": DS, "gridPos": self._place(w, h),
            "targets": [dict(t, refId=chr(65 + i), datasource=DS) for i, t in enumerate(targets)],
            "fieldConfig": {"defaults": {"unit": unit, "noValue": STYLE["no_value"],
                                         "thresholds": extra.pop("thresholds", NEUTRAL),
                                         "mappings": mappings,
                                         "color": {"mode": extra.pop("color_mode", "thresholds")}},
                            "overrides": extra.pop("overrides", [])},
            "options": extra.pop("options", {}),
        }
        links = runbook(*alerts) + extra.pop("links", [])
        if links:
            panel["links"] = links
        panel.update(extra)
        self.panels.append(panel)
        return panel

    def card(self, title, description, unit, expr, ok, decimals=None, w=4, h=5, legend=None,
             thresholds=NEUTRAL, alerts=(), on="instance"):
        """A card: the value per exporter and source; DEGRADED while the check or source
        behind it (`ok`, e.g. check_ok("app_users_registered")) fails on that same exporter
        and source; NO DATA without data. With a `legend` (e.g. "{{platform}}") it names each
        value. `expr` keeps platform, instance and source (see by())."""
        p = self.add("stat", title, description, unit,
                     [{"expr": guard(expr, ok, on), "instant": True, "legendFormat": legend or title}], w=w, h=h,
                     mappings=DEGRADED_MAPPING, thresholds=thresholds, alerts=alerts,
                     options={"reduceOptions": {"calcs": ["lastNotNull"], "values": False},
                              "colorMode": "background", "graphMode": "none",
                              "textMode": "value_and_name" if legend else "value"})
        if decimals is not None:
            p["fieldConfig"]["defaults"]["decimals"] = decimals
        return p

    def ts(self, title, description, unit, targets, w=12, h=8, stack=False, time_from=None, alerts=(),
           thresholds=None, overrides=None):
        """A time series; with `thresholds`, drawn as dashed lines at each step."""
        custom = {"fillOpacity": 20 if stack else 5, "lineWidth": 1, "showPoints": "never"}
        if stack:
            custom["stacking"] = {"mode": "normal", "group": "A"}
        if thresholds:
            custom["thresholdsStyle"] = {"mode": "dashed"}
        p = self.add("timeseries", title, description, unit, targets, w=w, h=h, color_mode="palette-classic",
                     alerts=alerts, thresholds=thresholds or NEUTRAL, overrides=overrides or [])
        p["fieldConfig"]["defaults"]["custom"] = custom
        if time_from:
            p["timeFrom"] = time_from
        return p

    def number(self, title, description, unit, targets, w=6, h=6, text="value_and_name", thresholds=NEUTRAL,
               color="none", alerts=()):
        """A stat of one or more numbers with their legends. Each target's `ok` expression
        guards it (on its `on` labels, default the exporter's instance): DEGRADED while that is 0."""
        return self.add("stat", title, description, unit,
                        [dict({k: v for k, v in t.items() if k not in ("ok", "on")},
                              expr=guard(t["expr"], t["ok"], t.get("on", "instance")), instant=True)
                         for t in targets], w=w, h=h, mappings=DEGRADED_MAPPING, thresholds=thresholds,
                        alerts=alerts,
                        options={"reduceOptions": {"calcs": ["lastNotNull"], "values": False}, "colorMode": color,
                                 "graphMode": "none", "textMode": text})

    def up_stat(self, kind, w=6):
        self.add("stat", f"{kind} up", f"1 while the {kind} source's health probe succeeds (pulse_source_up); DOWN when it fails, NO DATA when nothing is scraped.",
                 "none", [{"expr": sel("pulse_source_up", f'kind="{kind}"'), "instant": True,
                           "legendFormat": "{{platform}} {{source}}"}],
                 w=w, h=6, mappings=UP_MAPPING, alerts=["PulseSourceDown"],
                 options={"reduceOptions": {"calcs": ["lastNotNull"], "values": False},
                          "colorMode": "background", "graphMode": "none", "textMode": "value_and_name"})

    def bars(self, title, description, unit, targets, w=8, h=8, thresholds=NEUTRAL, alerts=()):
        return self.add("bargauge", title, description, unit,
                        [dict(t, instant=True) for t in targets], w=w, h=h, thresholds=thresholds, alerts=alerts,
                        options={"orientation": "horizontal", "displayMode": "basic", "showUnfilled": True,
                                 "reduceOptions": {"calcs": ["lastNotNull"], "values": False}})

    def table(self, title, description, unit, targets, w=12, h=9, transformations=None, overrides=None, alerts=(),
              links=()):
        return self.add("table", title, description, unit,
                        [dict(t, instant=True, format="table") for t in targets], w=w, h=h,
                        transformations=transformations or [], overrides=overrides or [], alerts=alerts,
                        links=list(links), options={"showHeader": True, "cellHeight": "sm"})

    def json(self, links):
        def query_var(name, label, query):
            return {"name": name, "label": label, "type": "query", "datasource": DS,
                    "query": query, "definition": query, "multi": True, "includeAll": True, "allValue": ".*",
                    "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                    "hide": 0, "refresh": 2, "regex": "", "sort": 1, "options": []}
        return {
            "uid": self.uid, "title": self.title, "description": self.description,
            "tags": ["pulse-exporter"], "timezone": "browser", "editable": True,
            "schemaVersion": 39, "version": 1, "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"},
            "timepicker": {"refresh_intervals": ["30s", "1m", "5m", "15m"]},
            "templating": {"list": [
                {"name": "datasource", "label": "Prometheus", "type": "datasource",
                 "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "regex": "",
                 "options": []},
                query_var("platform", "Platform", "label_values(pulse_build_info, platform)"),
                query_var("instance", "Exporter", 'label_values(pulse_build_info{platform=~"$platform"}, instance)'),
            ]},
            "annotations": {"list": []},
            "links": [{"title": t, "type": "link", "url": f"/d/{u}", "icon": "dashboard", "keepTime": True,
                       "includeVars": True} for u, t in links if u != self.uid],
            "panels": self.panels,
        }


# --- Expressions shared by several panels -------------------------------------------------

# Redis deletes an empty list, so an absent queue key reads 0 while its check succeeds (the
# example's key checks are named `<queue>-queue`).
def redis_depth(queue=None):
    if queue:
        return (f'sum by ({by()}) ({sel("app_queue_depth", eq("queue", queue))})'
                f'\nor max by ({by()}) (0 * {sel("pulse_check_success", eq("check", queue + "-queue"))})')
    return (f'sum by ({by("queue")}) ({sel("app_queue_depth")})'
            f'\nor max by ({by("queue")}) (label_replace(0 * {sel("pulse_check_success", rx("check", ".+-queue"))}, '
            f'"queue", "$1", "check", "(.+)-queue"))')


REDIS_QUEUE_OK = check_ok(".+-queue")

# Age of the oldest waiting job, 0 for an empty queue (its oldest-time series is absent then;
# a queue that holds jobs without an oldest time shows nothing rather than 0).
def redis_oldest(queue=None):
    if queue:
        return (f'time() - min by ({by()}) ({sel("app_queue_oldest_job_timestamp_seconds", eq("queue", queue))})'
                f'\nor (max by ({by()}) (0 * {sel("pulse_check_success", eq("check", queue + "-queue"))})'
                f' unless on (instance) {sel("app_queue_depth", eq("queue", queue))} > 0)')
    return (f'time() - min by ({by("queue")}) ({sel("app_queue_oldest_job_timestamp_seconds")})'
            f'\nor (max by ({by("queue")}) (label_replace(0 * {sel("pulse_check_success", rx("check", ".+-queue"))}, '
            f'"queue", "$1", "check", "(.+)-queue")) unless on (instance, queue) {sel("app_queue_depth")} > 0)')


REDIS_OLDEST = redis_oldest()
PG_OLDEST = (f'time() - min by ({by("queue")}) ({sel("app_jobs_oldest_pending_timestamp_seconds")})'
             f'\nor 0 * max by ({by("queue")}) ({sel("app_jobs_pending")} == 0)')
RABBIT_OLDEST = (f'time() - min by ({by("vhost", "queue")}) '
                 f'({sel("pulse_rabbitmq_queue_head_message_timestamp_seconds", eq("dead_letter", "false"))})'
                 f'\nor 0 * max by ({by("vhost", "queue")}) '
                 f'({sel("pulse_rabbitmq_queue_messages", eq("state", "ready"), eq("dead_letter", "false"))} == 0)')


# The business signals of prometheus/rules/pulse-business.yml, as the admin overview draws
# them: (signal, title, what it counts, 1 while what it is read from works).
SIGNALS = [
    ("signups", "Signups per hour", "Accounts registered in the last hour (the growth of app_users_registered).",
     check_ok("app_users_registered")),
    ("payments", "Payments per hour", "PaymentIntents that succeeded in the last hour (Stripe events read by type).",
     source_ok("stripe")),
    ("ai_requests", "AI requests per hour", "AI requests created in the last hour.", check_ok("app_ai_requests")),
    ("preview_requests", "Previews requested per hour", "Preview builds requested in the last hour.",
     check_ok("app_preview_requests")),
]


def business_ratio():
    """The share of the usual under which PulseBusinessSignalLow fires, read from its rule
    (alerts/pulse-alerts.yml), so the dashboards draw the line the alert uses."""
    with open(ALERTS_FILE) as f:
        m = re.search(r"business:signal:count1h < ([0-9.]+) \* business:signal:usual1h", f.read())
    if not m:
        sys.exit("scripts/dashboards.py: PulseBusinessSignalLow's `count1h < R * usual1h` not found in alerts/pulse-alerts.yml")
    return float(m.group(1))


def business_health(b):
    """The row on top of the admin overview: each business signal against the same hour of
    the week, usually, so an SRE sees at a glance whether today is normal."""
    ratio = business_ratio()
    b.row("Business health")
    shares = []
    for signal, _, _, ok in SIGNALS:
        pick = eq("signal", signal)
        now = f'sum by ({by()}) ({sel("business:signal:count1h", pick)})'
        usual = f'sum by ({by()}) ({sel("business:signal:usual1h", pick)})'
        shares.append({"expr": f"{now}\n/ ({usual} > 0)", "legendFormat": f"{{{{platform}}}} {signal}", "ok": ok})
    b.number("Business signals against their usual",
             f"Each signal's last hour as a share of the same hour of the week, usually (the median of the last four weeks). Red under {ratio:.0%} (PulseBusinessSignalLow fires after 15 minutes there, in an hour busy enough to judge), orange under 80 %. DEGRADED while the check or source a signal is read from fails; NO DATA with less than two weeks of history, or for a signal this platform does not publish.",
             "percentunit", shares, w=24, h=4, thresholds=steps(("red", None), ("orange", ratio), ("green", 0.8)),
             color="background", alerts=["PulseBusinessSignalLow"])
    # The usual band: from the usual (dashed) down to the alert line (dotted), one pair per
    # platform shown.
    band = [
        {"matcher": {"id": "byFrameRefID", "options": "B"},
         "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}]},
        {"matcher": {"id": "byFrameRefID", "options": "C"},
         "properties": [{"id": "custom.lineStyle", "value": {"fill": "dot", "dash": [2, 6]}}]},
    ]
    for signal, title, what, _ in SIGNALS:
        pick = eq("signal", signal)
        today = f'sum by (platform) ({sel("business:signal:count1h", pick)})'
        usual_line = f'sum by (platform) ({sel("business:signal:usual1h", pick)})'
        b.ts(title, f"{what} Solid: today. Dashed: the usual for the same hour of the week (the median of the last four weeks). Dotted: the alert line, {ratio:.0%} of the usual: today under it for 15 minutes, in an hour whose usual is large enough, is PulseBusinessSignalLow.",
             "short",
             [{"expr": today, "legendFormat": "{{platform}} today"},
              {"expr": usual_line, "legendFormat": "{{platform}} usual"},
              {"expr": f"{ratio} * {usual_line}", "legendFormat": "{{platform}} alert line"}],
             w=6, h=7, time_from="2d", alerts=["PulseBusinessSignalLow"], overrides=band)


def admin():
    b = Board("pulse-admin-overview", "Admin overview",
              "The platforms' admin analytics view (HiveSync spec section 4, JOIP and Hayon analytics): business health against the usual week, summary cards, usage charts, growth, content, top users and incidents. Filter by platform and exporter above.")
    business_health(b)
    b.row("Summary")
    b.card("Online users now", "Distinct users with an open WebSocket session or a heartbeat in the last 2 minutes.", "short",
           f"sum by ({by()}) ({sel('app_online_users')})", check_ok("app_online_users"))
    b.card("AI requests per minute", "AI requests created in the last 60 seconds (sliding window: RPM).", "short",
           f'sum by ({by()}) ({sel("app_ai_requests", eq("window", "1m"))})', check_ok("app_ai_requests"))
    b.card("AI requests (last hour)", "AI requests created in the last 60 minutes (sliding window: RPH).", "short",
           f'sum by ({by()}) ({sel("app_ai_requests", eq("window", "1h"))})', check_ok("app_ai_requests"))
    b.card("AI queue depth", "Jobs waiting in the AI task queue (LLEN; an empty queue has no key and reads 0). Orange from 100, red from 500; the alert watches whether it drains, not its size.", "short",
           redis_depth("ai"), check_ok("ai-queue"), thresholds=QUEUE_DEPTH, alerts=["PulseJobsNotProcessed"])
    b.card("Preview queue depth", "Jobs waiting in the preview build queue (LLEN; an empty queue has no key and reads 0). Orange from 100, red from 500.", "short",
           redis_depth("preview"), check_ok("preview-queue"), thresholds=QUEUE_DEPTH, alerts=["PulseJobsNotProcessed"])
    b.card("Paid vs free: paid share", "Paid accounts over all accounts (HiveSync: plan class paid; Hayon: Pro with an active Stripe subscription). Never +Inf: no value without accounts.", "percentunit",
           f'(sum by ({by()}) ({sel("app_users_by_plan", eq("plan", "paid"))}) or sum by ({by()}) ({sel("app_users_paid")}))'
           f'\n/ (sum by ({by()}) ({sel("app_users_registered")}) > 0)',
           check_ok("app_users_by_plan", "app_users_paid", "app_users_registered"), decimals=1, legend="{{platform}}")
    b.card("DAU", "Distinct users active in the last 24 hours: a login, AI request, preview request or live-view join.", "short",
           f'sum by ({by()}) ({sel("app_active_users", eq("window", "24h"))})', check_ok("app_active_users"))
    b.card("MAU", "Distinct users active in the last 30 days (same activity as DAU).", "short",
           f'sum by ({by()}) ({sel("app_active_users", eq("window", "30d"))})', check_ok("app_active_users"))
    b.card("Preview requests (last hour)", "Preview builds requested in the last 60 minutes (sliding window).", "short",
           f'sum by ({by()}) ({sel("app_preview_requests", eq("window", "1h"))})', check_ok("app_preview_requests"))
    b.card("AI error rate (24 h)", "AI requests of the last 24 hours that failed (provider errors, timeouts, safety rejections) over all AI requests of the last 24 hours. Orange from 2 %, red from 5 %.", "percentunit",
           f'sum by ({by()}) ({sel("app_ai_errors_24h")})'
           f'\n/ (sum by ({by()}) ({sel("app_ai_requests", eq("window", "24h"))}) > 0)',
           check_ok("app_ai_errors_24h", "app_ai_requests"), decimals=1, thresholds=ERROR_RATE)
    b.card("Preview failure rate (24 h)", "Preview builds of the last 24 hours that failed over all preview builds requested in the last 24 hours. Orange from 2 %, red from 5 %.", "percentunit",
           f'sum by ({by()}) ({sel("app_preview_failures_24h")})'
           f'\n/ (sum by ({by()}) ({sel("app_preview_requests", eq("window", "24h"))}) > 0)',
           check_ok("app_preview_failures_24h", "app_preview_requests"), decimals=1, thresholds=ERROR_RATE)
    b.card("Oldest waiting AI job", "How long the oldest job of the AI queue has waited (0 when the queue is empty). Orange from 5 minutes, red from 10 (the alert's threshold).", "s",
           redis_oldest("ai"), check_ok("ai-queue"), thresholds=JOB_AGE, alerts=["PulseOldestJobTooOld"])
    b.row("Charts")
    b.ts("AI requests per hour (24 h)", "AI requests created in the sliding hour, over the last 24 hours.", "short",
         [{"expr": f'sum by (platform) ({sel("app_ai_requests", eq("window", "1h"))})', "legendFormat": "{{platform}} requests / hour"}],
         time_from="24h")
    b.ts("DAU (14 days) by plan", "Daily active users by plan class, over the last 14 days.", "short",
         [{"expr": f'sum by (plan) ({sel("app_active_users", eq("window", "24h"))})', "legendFormat": "{{plan}}"}],
         stack=True, time_from="14d")
    b.bars("Users by plan", "Accounts by plan class: paid, free, trial, and trials that ended without an upgrade.", "short",
           [{"expr": f'sum by (plan) ({sel("app_users_by_plan")})', "legendFormat": "{{plan}}"}])
    b.ts("Average AI latency", "Average seconds from AI job created to completed, over jobs completed in each window (left), and how many completed in it (right): when no job completes, the latency has no value and the completions read 0.", "s",
         [{"expr": f'avg by (window) ({sel("app_job_latency_avg_seconds", eq("queue", "ai"))})', "legendFormat": "latency {{window}}"},
          {"expr": f'sum by (window) ({sel("app_jobs_completed", eq("queue", "ai"))})', "legendFormat": "completed {{window}}"}],
         w=8, alerts=["PulseJobLatencyHigh"], thresholds=LATENCY,
         overrides=[{"matcher": {"id": "byFrameRefID", "options": "B"},
                     "properties": [{"id": "unit", "value": "short"}, {"id": "custom.axisPlacement", "value": "right"},
                                    {"id": "custom.drawStyle", "value": "bars"}, {"id": "custom.fillOpacity", "value": 30}]}])
    b.ts("AI requests per user (24 h)", "Median, p90 and max of AI requests per user over the last 24 hours, across users with at least one.", "short",
         [{"expr": f'max by (stat) ({sel("app_ai_requests_per_user_24h")})', "legendFormat": "{{stat}}"}], w=8)
    b.ts("AI errors (24 h) by kind", "AI requests of the last 24 hours that failed: provider errors, timeouts, safety rejections.", "short",
         [{"expr": f'sum by (error) ({sel("app_ai_errors_24h")})', "legendFormat": "{{error}}"}], w=8)
    b.ts("Online devices by type", "Online sessions by device type.", "short",
         [{"expr": f'sum by (device) ({sel("app_online_devices")})', "legendFormat": "{{device}}"}], w=8, stack=True)
    b.ts("WebSocket connections", "Open WebSocket connections (ws_sessions:* keys in Redis): all, the distinct users behind them, and by device type.", "short",
         [{"expr": f'sum({sel("app_websocket_sessions")})', "legendFormat": "connections"},
          {"expr": f'sum({sel("app_websocket_users")})', "legendFormat": "distinct users"},
          {"expr": f'sum by (device) ({sel("app_websocket_sessions_by_device")})', "legendFormat": "{{device}}"}], w=8)
    b.number("Estimated AI cost per month (ESTIMATE)",
             "Estimates only: tokens of the last 30 days at the configured price per 1k tokens, and every GPU worker up now running a whole month (730 h) at its configured hourly price.",
             "currencyUSD",
             [{"expr": f'sum by ({by()}) ({sel("app_ai_cost_estimate_usd", eq("basis", "tokens"))})', "legendFormat": "tokens (30 d)",
               "ok": check_ok("app_ai_cost_estimate_usd")},
              {"expr": f'sum by ({by()}) (\n  ({sel("pulse_worker_up", eq("pool", "gpu"))} == 1)\n'
                       f'  * on (instance, source, pool, worker) group_left (instance_type) {sel("pulse_worker_info", eq("pool", "gpu"))}\n'
                       f'  * on (instance, instance_type) group_left () max by (instance, instance_type) ({sel("app_instance_price_usd_per_hour")})\n) * 730',
               "legendFormat": "GPU instance hours", "ok": check_ok("heartbeat:gpu")}], w=8, h=8)
    b.row("Growth and users")
    b.card("Registered users", "All accounts, whatever their plan or status, per platform.", "short",
           f"sum by ({by()}) ({sel('app_users_registered')})", check_ok("app_users_registered"), w=6, h=6, legend="{{platform}}")
    b.card("Signups (30 d)", "Accounts created in the last 30 days (JOIP \"New Users\"), per platform.", "short",
           f"sum by ({by()}) ({sel('app_users_signups_30d')})", check_ok("app_users_signups_30d"), w=6, h=6, legend="{{platform}}")
    b.card("Monthly growth", "Accounts created in the last 30 days over the accounts that existed before them, per platform.", unit_of("app_users_monthly_growth_ratio"),
           f"max by ({by()}) ({sel('app_users_monthly_growth_ratio')})", check_ok("app_users_monthly_growth_ratio"), w=6, h=6,
           legend="{{platform}}", decimals=1)
    b.number("Change against the previous period",
             "Each number now against its value one dashboard time range ago (the range picked above: 30 days compares with the previous month). Needs that much history in Prometheus: NO DATA until then.",
             "percent",
             [{"expr": f"(sum by ({by()}) ({sel(m)})\n/ (sum by ({by()}) ({per_replica(raw(m) + ' offset $__range')}) > 0) - 1) * 100",
               "legendFormat": f"{{{{platform}}}} {label}", "ok": check_ok(m)}
              for m, label in [("app_users_registered", "users"), ("app_users_signups_30d", "signups"),
                               ("app_users_tracked_active_30d", "active users")]], w=6, h=6)
    b.panels[-1]["fieldConfig"]["defaults"]["decimals"] = 1
    b.card("Users by status", "Accounts by status: active can log in, disabled were deactivated by an admin (Hayon isDisabled).", "short",
           f"sum by ({by('status')}) ({sel('app_users')})", check_ok("app_users"), w=6, h=6, legend="{{platform}} {{status}}")
    b.card("Paid users", "Accounts on a paid plan (HiveSync: plan class paid; Hayon: Pro plan with an active Stripe subscription).", "short",
           f'sum by ({by()}) ({sel("app_users_by_plan", eq("plan", "paid"))})\nor sum by ({by()}) ({sel("app_users_paid")})',
           check_ok("app_users_by_plan", "app_users_paid"), w=6, h=6, legend="{{platform}}")
    b.card("Top plan", "The most common plan across all accounts (name) and how many accounts are on it.", "short",
           f"max by ({by('plan')}) ({sel('app_users_top_plan')})", check_ok("app_users_top_plan"), w=6, h=6,
           legend="{{platform}}: {{plan}}")
    b.card("Users near their plan limits", "Active accounts that used at least 80 % of their plan's post limit, and of their caption-generation limit.", "short",
           f'label_replace(sum by ({by()}) ({sel("app_users_near_post_limit")}), "limit", "posts", "", "")'
           f'\nor label_replace(sum by ({by()}) ({sel("app_users_near_caption_limit")}), "limit", "captions", "", "")',
           check_ok("app_users_near_post_limit", "app_users_near_caption_limit"), w=6, h=6, legend="{{platform}} {{limit}}")
    b.ts("MAU (30 days) by plan", "Distinct users active in the last 30 days by plan class.", "short",
         [{"expr": f'sum by (plan) ({sel("app_active_users", eq("window", "30d"))})', "legendFormat": "{{plan}}"}], w=8, stack=True)
    b.bars("Posts against plan limits", "Posts created and the post limits they count against, summed per plan (Hayon).", "short",
           [{"expr": f'sum by (plan, field) ({sel("app_posts_usage", rx("field", "posts_created|posts_limit"))})', "legendFormat": "{{plan}} {{field}}"}])
    b.bars("Captions against plan limits", "Caption generations used and the caption-generation limits they count against, summed per plan (Hayon).", "short",
           [{"expr": f'sum by (plan, field) ({sel("app_posts_usage", rx("field", "captions_generated|captions_limit"))})', "legendFormat": "{{plan}} {{field}}"}])
    b.ts("Daily roll-ups", "The usage_analytics_daily figures (recording rules usage_daily:*, all HiveSync exporters), one point per day: each day's value is read at its end.", "short",
         [{"expr": "usage_daily:dau", "legendFormat": "dau"},
          {"expr": "usage_daily:mau", "legendFormat": "mau"},
          {"expr": "usage_daily:ai_requests", "legendFormat": "ai_requests"},
          {"expr": "usage_daily:preview_requests", "legendFormat": "preview_requests"},
          {"expr": "usage_daily:max_queue_depth", "legendFormat": "max_queue_depth"}], w=16, time_from="30d",
         alerts=["PulseDailyRollupStale"])
    b.panels[-1]["interval"] = "1d"
    b.ts("Daily roll-up: average latency", "The roll-up's avg_latency_ms: the recording rule usage_daily:avg_latency_ms (one point per day, read at its end) and the backend's own latest usage_analytics_daily row.", "ms",
         [{"expr": "usage_daily:avg_latency_ms", "legendFormat": "avg_latency_ms (recording rule)"},
          {"expr": f'max by (platform) ({sel("app_usage_daily_rollup", eq("field", "avg_latency_seconds"))}) * 1000',
           "legendFormat": "{{platform}} avg_latency_ms (backend's latest row)"}], w=8, time_from="30d",
         alerts=["PulseDailyRollupStale"])
    b.panels[-1]["interval"] = "1d"

    b.row("Content, revenue and referrals (JOIP)")
    b.card("Active users (30 d)", "JOIP \"Active Users\": distinct users with any tracked event in the last 30 days.", "short",
           f"sum by ({by()}) ({sel('app_users_tracked_active_30d')})", check_ok("app_users_tracked_active_30d"), w=4, h=6)
    b.card("Content", "JOIP slideshow sessions and files in the media vaults: all, and those shared to the community.", "short",
           f"sum by ({by('item', 'scope')}) ({sel('app_content_items')})", check_ok("app_content_items"), w=6, h=6,
           legend="{{item}} {{scope}}")
    b.card("Community likes", "Likes on shared sessions and media, lifetime.", "short",
           f"sum by ({by()}) ({sel('app_community_likes')})", check_ok("app_community_likes"), w=4, h=6)
    b.card("Revenue (lifetime)", "Credit purchases (estimated revenue) and paid subscription invoices (deprecated tier), in USD.", "currencyUSD",
           f"sum by ({by('stream')}) ({sel('app_revenue_usd')})", check_ok("app_revenue_usd"), w=6, h=6, legend="{{stream}}")
    b.card("Referrals", "Referred users, and those with tracked activity in the last 30 days.", "short",
           f"sum by ({by('state')}) ({sel('app_referrals')})", check_ok("app_referrals"), w=4, h=6, legend="{{state}}")
    b.card("Referral credits earned", "Referral rewards distributed, in credits, lifetime.", "short",
           f"sum by ({by()}) ({sel('app_referral_credits_awarded')})", check_ok("app_referral_credits_awarded"), w=4, h=6)
    b.card("Referral conversion", "Referred users who became active over all referred users.", "percentunit",
           f"max by ({by()}) ({sel('app_referral_conversion_ratio')})", check_ok("app_referral_conversion_ratio"), w=4, h=6,
           decimals=1)
    b.add("piechart", "Caption themes", "Smart captions generated and regenerated by caption theme, lifetime (JOIP theme distribution).", "short",
          [{"expr": f"sum by (theme) ({sel('app_caption_themes')})", "instant": True, "legendFormat": "{{theme}}"}], w=8, h=8,
          color_mode="palette-classic",
          options={"pieType": "donut", "reduceOptions": {"calcs": ["lastNotNull"], "values": False},
                   "legend": {"displayMode": "table", "placement": "right", "values": ["value", "percent"], "showLegend": True},
                   "tooltip": {"mode": "single"}})
    b.bars("Babecock layouts", "Babecock compositions created and remixed, by layout, lifetime (JOIP layout distribution).", "short",
           [{"expr": f"sum by (action, layout) ({sel('app_babecock_layouts')})", "legendFormat": "{{action}} {{layout}}"}])
    b.bars("Feature usage (lifetime)", "Lifetime feature counters summed over users (user_usage_stats): sessions, captions, babecock images and remixes, media, logins.", "short",
           [{"expr": f"sum by (counter) ({sel('app_feature_usage')})", "legendFormat": "{{counter}}"}], w=8, h=10)
    b.bars("Activity by feature (24 h)", "Tracked user events of the last 24 hours by feature (JOIP activity log).", "short",
           [{"expr": f"sum by (feature) ({sel('app_activity_events_24h')})", "legendFormat": "{{feature}}"}], w=8, h=10)
    b.table("Tracked events (24 h)", "Tracked user events of the last 24 hours by feature and action (user_activity_logs).", "short",
            [{"expr": f"sum by (feature, action) ({sel('app_activity_events_24h')})"}], w=8, h=10,
            transformations=[organize({"Value": "events"}), sort_by("events")])
    features = ["sessions_created", "smart_captions_generated", "custom_captions_generated", "babecock_images_created", "media_uploaded"]
    b.table("Most active users (JOIP score)", "The five users with the highest total activity score, the score's breakdown by feature (sessions created, smart and custom captions, babecock images, media uploaded) and their last activity.", "short",
            [{"expr": f"max by (user_id) ({sel('app_top_active_users_score')})"}]
            + [{"expr": f'max by (user_id) ({sel("app_top_active_users_activity", eq("feature", f))})'} for f in features]
            + [{"expr": f"max by (user_id) ({sel('app_top_active_users_last_activity_timestamp_seconds')}) * 1000"}],
            w=16, h=8,
            transformations=[MERGE,
                             organize({"user_id": "user", "Value #A": "activity score",
                                       **{f"Value #{chr(66 + i)}": f.replace("_", " ") for i, f in enumerate(features)},
                                       "Value #G": "last activity"}),
                             sort_by("activity score")],
            overrides=[column("last activity", unit="dateTimeAsIso")])
    b.table("Top contributors", "JOIP \"Top Contributors\": the five users whose shared sessions and media received the most likes.", "short",
            [{"expr": f"max by (user_id) ({sel('app_top_community_contributors_likes')})"}], w=8, h=8,
            transformations=[organize({"user_id": "user", "Value": "likes"}), sort_by("likes")])

    b.row("Top users and incidents")
    b.table("Top 20 AI users (7 days)", "The 20 users with the most AI requests over 7 days: user id, display name, plan, last seen, request count. No emails unless the exporter config opts in.",
            "short",
            [{"expr": f"max by (user_id, username, plan) ({sel('app_top_ai_user_requests_7d')})"},
             {"expr": f"max by (user_id) ({sel('app_top_ai_user_last_seen_timestamp_seconds')}) * 1000"}],
            w=16, transformations=[MERGE,
                                   organize({"user_id": "user id", "Value #A": "AI calls (7 d)", "Value #B": "last seen"},
                                            order=["user_id", "username", "plan", "Value #B", "Value #A"]),
                                   sort_by("AI calls (7 d)")],
            overrides=[column("last seen", unit="dateTimeAsIso")])
    b.table("Recent incidents (24 h)", "AI provider errors, timeouts and safety rejections, and failed preview builds, of the last 24 hours.", "short",
            [{"expr": f'label_replace(sum by (error) ({sel("app_ai_errors_24h")}), "incident", "AI $1", "error", "(.*)")'},
             {"expr": f'label_replace(sum({sel("app_preview_failures_24h")}), "incident", "preview build failed", "", "")'}],
            w=8, transformations=[MERGE, organize({"incident": "incident", "Value": "count (24 h)"}, exclude=["error"]),
                                  sort_by("count (24 h)")],
            overrides=[column("count (24 h)", thresholds=steps(("green", None), ("orange", 1)), cell="color-text")])
    b.add("alertlist", "Firing alerts", "Alerts firing or pending now (Prometheus alert rules; the Watchdog left out), most important first. Silences and notification groups: Alerting > Groups with the Alertmanager data source.", "none",
          [], w=8, h=10,
          links=[{"title": "Alertmanager groups and silences", "url": "/alerting/groups?alertmanager=Alertmanager"}],
          options={"viewMode": "list", "groupMode": "default", "groupBy": [], "maxItems": 20, "sortOrder": 3,
                   "dashboardAlerts": False, "alertName": "", "alertInstanceLabelFilter": '{alertname!="Watchdog"}',
                   "datasource": "Prometheus", "showInstances": True, "folder": None,
                   "stateFilter": {"firing": True, "pending": True, "noData": False, "normal": False, "error": True}})
    history_labels = "alertstate, job, tier"   # dropped: every other label of the alert is a column
    firing = f'ALERTS{{alertstate="firing", alertname!="Watchdog", {FILTER}}}'
    b.table("Alert history", "Every alert that fired in the dashboard's time range (the Watchdog left out): when it first and last fired in the range and for how long, at one-minute resolution.", "short",
            [{"expr": f"min without ({history_labels}) (min_over_time(timestamp({firing})[$__range:1m])) * 1000"},
             {"expr": f"max without ({history_labels}) (max_over_time(timestamp({firing})[$__range:1m])) * 1000"},
             {"expr": f"sum without ({history_labels}) (count_over_time({firing}[$__range:1m])) * 60"}],
            w=16, h=10,
            transformations=[MERGE,
                             organize({"alertname": "alert", "Value #A": "first fired", "Value #B": "last fired",
                                       "Value #C": "firing for"},
                                      order=["alertname", "severity", "platform", "instance", "source", "queue", "pool",
                                             "Value #A", "Value #B", "Value #C"]),
                             sort_by("last fired")],
            overrides=[column("first fired", unit="dateTimeAsIso"), column("last fired", unit="dateTimeAsIso"),
                       column("firing for", unit="s"),
                       column("severity", cell="color-text", mappings=[{"type": "value", "options": {
                           "critical": {"color": "red", "index": 0}, "warning": {"color": "orange", "index": 1},
                           "info": {"color": "blue", "index": 2}}}])])
    return b


def health():
    b = Board("pulse-platform-health", "Platform health",
              "The exporters, then one row per source kind following the Hayon checklist (MongoDB, Redis, RabbitMQ workers, Stripe webhooks, S3 uploads) plus Postgres and log files: up, probe latency, failure reasons, key numbers.")

    b.row("Exporters")
    b.table("Exporters", "Each pulse-exporter: scraped (up), its version, whether its last config (re)load succeeded and when a config was last applied.", "short",
            [{"expr": f'max by (platform, instance) ({sel("up", eq("job", "pulse-exporter"))})'},
             {"expr": f"max by (platform, instance, version) ({sel('pulse_build_info')})"},
             {"expr": f"max by (platform, instance) ({sel('pulse_config_last_reload_successful')})"},
             {"expr": f"max by (platform, instance) ({sel('pulse_config_last_reload_success_timestamp_seconds')}) * 1000"}],
            w=24, h=6, alerts=["PulseExporterDown", "PulseConfigReloadFailed"],
            transformations=[MERGE, organize({"Value #A": "scraped", "Value #C": "config reload", "Value #D": "config applied"},
                                             exclude=["Value #B"])],
            overrides=[column("scraped", mappings=UP_MAPPING, cell="color-background"),
                       column("config reload", mappings=OK_MAPPING, cell="color-background"),
                       column("config applied", unit="dateTimeAsIso")])

    day = 86400
    b.table("TLS certificates", "Time left before the first certificate of each chain expires: the chain every source's TLS endpoint presents (read every 10 minutes by a handshake of the exporter's own), and the one this exporter serves /metrics with. The alerts warn under 14 days; an expired certificate refuses every new connection.", "s",
            [{"expr": f"min by (platform, instance, source, endpoint) ({sel('pulse_tls_certificate_expiry_timestamp_seconds')}) - time()"
                      f' or label_replace(min by (platform, instance) ({sel("pulse_web_tls_certificate_expiry_timestamp_seconds")}) - time(), "source", "(this exporter\'s /metrics)", "", "")'}],
            w=24, h=6, alerts=["PulseSourceCertificateExpiring", "PulseExporterCertificateExpiring"],
            transformations=[organize({"Value": "expires in"}, order=["platform", "instance", "source", "endpoint", "expires in"]),
                             sort_by("expires in", desc=False)],
            overrides=[column("expires in", unit="s", thresholds=steps(("red", None), ("orange", 14 * day), ("green", 30 * day)), cell="color-background")])

    def common(kind, label):
        b.row(label)
        b.up_stat(kind)
        b.ts(f"{kind} probe latency", f"Duration of the last health probe of each {kind} source. The alert reads the 90th percentile over 15 minutes against 2 s.", "s",
             [{"expr": sel("pulse_source_probe_duration_seconds", f'kind="{kind}"'), "legendFormat": "{{platform}} {{source}}"}],
             w=9, h=6, alerts=["PulseSourceSlow"], thresholds=PROBE_LATENCY)
        b.ts(f"{kind} failures by reason", f"Failed health probes of {kind} sources per interval, by reason (connect, timeout, auth, query, …).", "short",
             [{"expr": f'sum by (platform, source, reason) ({over("increase", "pulse_source_probe_failures_total", eq("kind", kind))})',
               "legendFormat": "{{platform}} {{source}} {{reason}}"}], w=9, h=6, thresholds=steps(("green", None), ("red", 1)))

    common("postgres", "Postgres")
    b.ts("Postgres connections by state", "Client connections by state, against max_connections (the alert fires above 80 % of it).", "short",
         [{"expr": f"sum by (platform, source, state) ({sel('pulse_postgres_connections')})", "legendFormat": "{{platform}} {{source}} {{state}}"},
          {"expr": sel("pulse_postgres_max_connections"), "legendFormat": "{{platform}} {{source}} max"}],
         alerts=["PulsePostgresConnectionsNearMax"])
    b.ts("Postgres database size", "Size of the database each source connects to.", unit_of("pulse_postgres_database_size_bytes"),
         [{"expr": sel("pulse_postgres_database_size_bytes"), "legendFormat": "{{platform}} {{source}} {{database}}"}])
    b.table("Postgres replication and vitals", "Per source: standby or primary, streaming standbys (on a primary), the worst replication lag (the standby's own, else its primary's view; 0 without replication), inactive replication slots and the WAL slots retain, the database nearest transaction-ID wraparound, sessions waiting on locks, deadlocks in the range, and when the server started.", "short",
            [{"expr": f"max by (platform, instance, source) ({sel('pulse_postgres_in_recovery')})"},
             {"expr": f"max by (platform, instance, source) ({sel('pulse_postgres_streaming_standbys')}) or -1 + 0 * max by (platform, instance, source) ({sel('pulse_postgres_in_recovery')})"},
             {"expr": f"max by (platform, instance, source) ({sel('pulse_postgres_replication_lag_seconds')}) or max by (platform, instance, source) ({sel('pulse_postgres_standby_replay_lag_seconds')}) or 0 * max by (platform, instance, source) ({sel('pulse_postgres_in_recovery')})"},
             {"expr": f"count by (platform, instance, source) ({sel('pulse_postgres_replication_slot_active')} == 0) or 0 * max by (platform, instance, source) ({sel('pulse_postgres_in_recovery')})"},
             {"expr": f"sum by (platform, instance, source) ({sel('pulse_postgres_replication_slot_retained_wal_bytes')}) or 0 * max by (platform, instance, source) ({sel('pulse_postgres_in_recovery')})"},
             {"expr": f"max by (platform, instance, source) ({sel('pulse_postgres_database_wraparound_ratio')})"},
             {"expr": f"max by (platform, instance, source) ({sel('pulse_postgres_lock_waiting_sessions')})"},
             {"expr": f"sum by (platform, instance, source) ({over('increase', 'pulse_postgres_deadlocks_total')})"},
             {"expr": f"max by (platform, instance, source) ({sel('pulse_postgres_start_timestamp_seconds')}) * 1000"}],
            w=24, h=6, alerts=["PulsePostgresReplicationStopped", "PulsePostgresReplicationLag", "PulsePostgresReplicationSlotInactive", "PulsePostgresTxidWraparound", "PulsePostgresLockWaits", "PulsePostgresDeadlocks", "PulsePostgresRestarted"],
            transformations=[MERGE, organize({"Value #A": "role", "Value #B": "streaming standbys", "Value #C": "replication lag", "Value #D": "inactive slots",
                                              "Value #E": "WAL retained by slots", "Value #F": "wraparound used", "Value #G": "waiting on locks",
                                              "Value #H": "deadlocks", "Value #I": "started"})],
            overrides=[column("role", mappings=[{"type": "value", "options": {"0": {"text": "primary", "color": "blue", "index": 0}, "1": {"text": "standby", "color": "purple", "index": 1}}}], cell="color-text"),
                       column("streaming standbys", mappings=[{"type": "value", "options": {"-1": {"text": "n/a (standby)", "index": 0}}}]),
                       column("replication lag", unit="s", thresholds=steps(("green", None), ("orange", 60), ("red", 300)), cell="color-text"),
                       column("inactive slots", thresholds=steps(("green", None), ("orange", 1)), cell="color-text"),
                       column("WAL retained by slots", unit="bytes"),
                       column("wraparound used", unit="percentunit", thresholds=steps(("green", None), ("orange", 0.25), ("red", 0.5)), cell="color-text"),
                       column("deadlocks", thresholds=steps(("green", None), ("orange", 1)), cell="color-text"),
                       column("started", unit="dateTimeAsIso")])
    common("mongodb", "MongoDB")
    b.ts("MongoDB connections", "Current connections and connections still available (the alert fires when under 10 % remain available).", "short",
         [{"expr": sel("pulse_mongodb_connections"), "legendFormat": "{{platform}} {{source}} {{state}}"}], w=24,
         alerts=["PulseMongodbConnectionsLow"])
    b.table("MongoDB replica set members", "From replSetGetStatus: each member's state (1 primary, 2 secondary, 7 arbiter; anything else serves nothing), whether it is up as the server sees it, and each secondary's lag behind the primary. Empty for a standalone server.", "short",
            [{"expr": f"max by (platform, instance, source, set, member) ({sel('pulse_mongodb_replset_member_state')})"},
             {"expr": f"max by (platform, instance, source, set, member) ({sel('pulse_mongodb_replset_member_health')})"},
             {"expr": f"max by (platform, instance, source, set, member) ({sel('pulse_mongodb_replset_member_lag_seconds')})"}],
            w=24, h=6, alerts=["PulseMongodbReplicaSetNoPrimary", "PulseMongodbReplicaSetMemberUnhealthy", "PulseMongodbReplicationLag"],
            transformations=[MERGE, organize({"Value #A": "state", "Value #B": "health", "Value #C": "lag"})],
            overrides=[column("state", mappings=[{"type": "value", "options": {"1": {"text": "PRIMARY", "color": "green", "index": 0}, "2": {"text": "SECONDARY", "color": "green", "index": 1},
                                                                           "7": {"text": "ARBITER", "color": "blue", "index": 2}, "8": {"text": "DOWN", "color": "red", "index": 3}}}], cell="color-text"),
                       column("health", mappings=UP_MAPPING, cell="color-background"),
                       column("lag", unit="s", thresholds=steps(("green", None), ("orange", 10), ("red", 60)), cell="color-text")])
    common("redis", "Redis")
    b.ts("Redis memory", "Memory used, against maxmemory (0 = no limit, not drawn).", unit_of("pulse_redis_memory_used_bytes"),
         [{"expr": sel("pulse_redis_memory_used_bytes"), "legendFormat": "{{platform}} {{source}} used"},
          {"expr": f"{sel('pulse_redis_memory_max_bytes')} > 0", "legendFormat": "{{platform}} {{source}} max"}],
         alerts=["PulseRedisMemoryNearMax"])
    b.ts("Redis clients", "Connected and blocked clients.", "short",
         [{"expr": sel("pulse_redis_connected_clients"), "legendFormat": "{{platform}} {{source}} connected"},
          {"expr": sel("pulse_redis_blocked_clients"), "legendFormat": "{{platform}} {{source}} blocked"}])
    b.table("Redis instances", "Each Redis: its maxmemory policy, memory used and maxmemory (0 = no limit), connected clients, and keys evicted per second (red: on a Redis that holds queues or heartbeats evictions lose work).", "short",
            [{"expr": f"max by (platform, instance, source, policy) ({sel('pulse_redis_maxmemory_policy')})"},
             {"expr": f"max by (platform, instance, source) ({sel('pulse_redis_memory_used_bytes')})"},
             {"expr": f"max by (platform, instance, source) ({sel('pulse_redis_memory_max_bytes')})"},
             {"expr": f"max by (platform, instance, source) ({sel('pulse_redis_connected_clients')})"},
             {"expr": f"sum by (platform, instance, source) ({over('rate', 'pulse_redis_evicted_keys_total')})"}],
            w=24, h=6, alerts=["PulseRedisEvictingKeys", "PulseRedisMemoryNearMax"],
            transformations=[MERGE, organize({"policy": "maxmemory policy", "Value #B": "memory used", "Value #C": "maxmemory",
                                              "Value #D": "clients", "Value #E": "evicted keys / s"}, exclude=["Value #A"])],
            overrides=[column("memory used", unit="bytes"), column("maxmemory", unit="bytes"),
                       column("evicted keys / s", unit="short", thresholds=steps(("green", None), ("red", 0.000001)),
                              cell="color-background")])
    b.table("Redis replication and persistence", "Per Redis: master or replica, the replica's link to its master, replicas connected, whether the last RDB save succeeded (red: with stop-writes-on-bgsave-error writes are refused), the last successful save, writes since, and the keyspace hit ratio over the range.", "short",
            [{"expr": f"max by (platform, instance, source) ({sel('pulse_redis_replica')})"},
             {"expr": f"max by (platform, instance, source) ({sel('pulse_redis_master_link_up')}) or -1 + 0 * max by (platform, instance, source) ({sel('pulse_redis_replica')})"},
             {"expr": f"max by (platform, instance, source) ({sel('pulse_redis_connected_replicas')})"},
             {"expr": f"min by (platform, instance, source) ({sel('pulse_redis_rdb_last_bgsave_success')})"},
             {"expr": f"max by (platform, instance, source) ({sel('pulse_redis_rdb_last_save_timestamp_seconds')}) * 1000"},
             {"expr": f"max by (platform, instance, source) ({sel('pulse_redis_rdb_changes_since_last_save')})"},
             {"expr": f"sum by (platform, instance, source) ({over('increase', 'pulse_redis_keyspace_hits_total')}) / (sum by (platform, instance, source) ({over('increase', 'pulse_redis_keyspace_hits_total')}) + sum by (platform, instance, source) ({over('increase', 'pulse_redis_keyspace_misses_total')}) > 0) or 0 * max by (platform, instance, source) ({sel('pulse_redis_replica')})"}],
            w=24, h=6, alerts=["PulseRedisReplicationBroken", "PulseRedisPersistenceFailing", "PulseRedisBackupStale"],
            transformations=[MERGE, organize({"Value #A": "role", "Value #B": "master link", "Value #C": "replicas", "Value #D": "last save ok",
                                              "Value #E": "last save", "Value #F": "writes since", "Value #G": "hit ratio"})],
            overrides=[column("role", mappings=[{"type": "value", "options": {"0": {"text": "master", "color": "blue", "index": 0}, "1": {"text": "replica", "color": "purple", "index": 1}}}], cell="color-text"),
                       column("master link", mappings=[{"type": "value", "options": {"-1": {"text": "n/a (master)", "index": 0}, "1": {"text": "UP", "color": "green", "index": 1}, "0": {"text": "DOWN", "color": "red", "index": 2}}}], cell="color-text"),
                       column("last save ok", mappings=OK_MAPPING, cell="color-background"),
                       column("last save", unit="dateTimeAsIso"), column("hit ratio", unit="percentunit")])
    common("rabbitmq", "RabbitMQ workers")
    b.ts("RabbitMQ messages by vhost", "Ready and unacked messages in each vhost's selected queues.", "short",
         [{"expr": f"sum by (platform, source, vhost, state) ({sel('pulse_rabbitmq_vhost_messages')})", "legendFormat": "{{platform}} {{vhost}} {{state}}"}],
         w=9)
    b.ts("RabbitMQ consumers", "Consumers per queue: a queue with messages and 0 consumers means its workers are down.", "short",
         [{"expr": f'sum by (platform, queue) ({sel("pulse_rabbitmq_queue_consumers", eq("dead_letter", "false"))})', "legendFormat": "{{platform}} {{queue}}"}],
         w=9, alerts=["PulseQueueNotDraining"])
    b.add("stat", "RabbitMQ node alarms", "A memory or disk alarm on a broker node blocks every publisher: ALARM in red while one is raised.", "none",
          [{"expr": guard(f"max by ({by('node', 'alarm')}) ({sel('pulse_rabbitmq_node_alarm')})", source_ok("rabbitmq")),
            "instant": True, "legendFormat": "{{node}} {{alarm}}"}], w=6, h=8, alerts=["PulseRabbitmqNodeAlarm"],
          mappings=[{"type": "value", "options": {"0": {"text": "OK", "color": "green", "index": 0},
                                                  "1": {"text": "ALARM", "color": "red", "index": 1}}}, DEGRADED],
          options={"reduceOptions": {"calcs": ["lastNotNull"], "values": False}, "colorMode": "background",
                   "graphMode": "none", "textMode": "value_and_name"})
    b.table("RabbitMQ nodes", "Per node: running, nodes it cannot reach (a partition when above 0), and its file descriptors and sockets as a share of their limits (at the limit it refuses connections).", "short",
            [{"expr": f"max by (platform, instance, source, node) ({sel('pulse_rabbitmq_node_running')})"},
             {"expr": f"max by (platform, instance, source, node) ({sel('pulse_rabbitmq_node_partitions')})"},
             {"expr": f"max by (platform, instance, source, node) ({sel('pulse_rabbitmq_node_resource_used', eq('resource', 'file_descriptors'))} / ({sel('pulse_rabbitmq_node_resource_limit', eq('resource', 'file_descriptors'))} > 0))"},
             {"expr": f"max by (platform, instance, source, node) ({sel('pulse_rabbitmq_node_resource_used', eq('resource', 'sockets'))} / ({sel('pulse_rabbitmq_node_resource_limit', eq('resource', 'sockets'))} > 0))"}],
            w=12, h=6, alerts=["PulseRabbitmqNodeDown", "PulseRabbitmqNetworkPartition", "PulseRabbitmqResourceNearLimit"],
            transformations=[MERGE, organize({"Value #A": "running", "Value #B": "partitioned from", "Value #C": "file descriptors", "Value #D": "sockets"})],
            overrides=[column("running", mappings=UP_MAPPING, cell="color-background"),
                       column("partitioned from", thresholds=steps(("green", None), ("red", 1)), cell="color-background"),
                       column("file descriptors", unit="percentunit", thresholds=steps(("green", None), ("orange", 0.8), ("red", 0.9)), cell="color-text"),
                       column("sockets", unit="percentunit", thresholds=steps(("green", None), ("orange", 0.8), ("red", 0.9)), cell="color-text")])
    b.ts("RabbitMQ connections and unroutable messages", "Client connections to each broker, and messages per interval that no queue received (dropped or returned: lost work; 0 when none).", "short",
         [{"expr": f"max by (platform, source) ({sel('pulse_rabbitmq_connections')})", "legendFormat": "{{platform}} {{source}} connections"},
          {"expr": f"sum by (platform, source) ({over('increase', 'pulse_rabbitmq_unroutable_messages_total')}) or 0 * max by (platform, source) ({sel('pulse_rabbitmq_connections')})", "legendFormat": "{{platform}} {{source}} unroutable"}],
         w=12, h=6, alerts=["PulseRabbitmqUnroutableMessages"])
    common("stripe", "Stripe webhooks")
    b.add("stat", "Stripe webhook endpoints", "1 (enabled) or 0 (disabled) per webhook endpoint; a disabled endpoint receives nothing.", "none",
          [{"expr": guard(sel("pulse_stripe_webhook_endpoint_enabled"), check_ok("webhook_endpoints.*")),
            "instant": True, "legendFormat": "{{host}} {{endpoint}}"}], w=24, h=6, alerts=["PulseStripeWebhookEndpointDisabled"],
          mappings=[{"type": "value", "options": {"1": {"text": "ENABLED", "color": "green", "index": 0},
                                                  "0": {"text": "DISABLED", "color": "red", "index": 1}}}, DEGRADED],
          options={"reduceOptions": {"calcs": ["lastNotNull"], "values": False}, "colorMode": "background",
                   "graphMode": "none", "textMode": "value_and_name"})
    stripe_keys = "platform, instance, source, account"
    b.number("Stripe webhook endpoints left",
             "Enabled webhook endpoints per account. An endpoint deleted (not disabled) shows only here, as a drop; the alert compares with the last hour.",
             "none", [{"expr": f'sum by ({stripe_keys}) ({sel("pulse_stripe_webhook_endpoints", eq("status", "enabled"))})',
                       "ok": check_ok("webhook_endpoints.*"), "legendFormat": "{{source}} {{account}}"}],
             w=4, h=6, thresholds=steps(("red", None), ("green", 1)), color="background",
             alerts=["PulseStripeWebhookEndpointDeleted"])
    def or_zero(expr):
        # A Stripe series that is absent when there is nothing to count: 0 for every account
        # whose events check runs, so a card reads 0 instead of "No data".
        return (f"{expr}\nor on (instance, source, account) "
                f"0 * sum by ({stripe_keys}) ({sel('pulse_stripe_events')})")

    b.number("Stripe oldest undelivered event",
             "Age of the oldest event not yet delivered to every endpoint (0 when none). Past stuck_after (15 min by default) it is stuck: red.",
             "s", [{"expr": or_zero(f"max by ({stripe_keys}) (time() - {sel('pulse_stripe_oldest_undelivered_event_timestamp_seconds')})"),
                    "ok": check_ok("undelivered_events.*"), "legendFormat": "{{source}} {{account}}"}],
             w=4, h=6, thresholds=steps(("green", None), ("red", 900)), color="background",
             alerts=["PulseStripeWebhookDeliveriesStuck"])
    b.number("Stripe abandoned events",
             "Events Stripe stopped retrying (past retry_horizon, 72h, or due at an endpoint since disabled or deleted) that never reached every endpoint. They stay here until resent or acknowledged in the config, up to 30 days: red while any.",
             "short", [{"expr": or_zero(f"sum by ({stripe_keys}) ({sel('pulse_stripe_abandoned_events')})"),
                       "ok": check_ok("undelivered_events.*"), "legendFormat": "{{source}} {{account}}"}],
             w=4, h=6, thresholds=steps(("green", None), ("red", 1)), color="background",
             alerts=["PulseStripeWebhookEventsAbandoned"])
    b.ts("Stripe stuck deliveries",
         "Events not delivered to every webhook endpoint for longer than stuck_after, by type (the alert reads these), those Stripe gave up on, and all undelivered events Stripe still retries, in flight included (above 0 on a busy account).",
         "short",
         [{"expr": f"sum by (event_type) ({sel('pulse_stripe_stuck_events')})", "legendFormat": "stuck {{event_type}}"},
          {"expr": f"sum by (event_type) ({sel('pulse_stripe_abandoned_events')})", "legendFormat": "abandoned {{event_type}}"},
          {"expr": f"sum({sel('pulse_stripe_undelivered_events')})", "legendFormat": "undelivered, in flight included"},
          {"expr": f"sum({sel('pulse_stripe_events')})", "legendFormat": "all events in the window"}], w=12, h=6,
         alerts=["PulseStripeWebhookDeliveriesStuck", "PulseStripeWebhookEventsAbandoned"])
    common("s3", "S3 media uploads")
    b.ts("S3 canary steps", "1 when the canary's put, get (read back and compared) and delete worked in its last run.", "bool",
         [{"expr": sel("pulse_s3_canary_success"), "legendFormat": "{{bucket}} {{step}}"}], alerts=["PulseS3CanaryFailing"])
    b.ts("S3 canary duration", "Duration of each canary step.", unit_of("pulse_s3_canary_duration_seconds"),
         [{"expr": sel("pulse_s3_canary_duration_seconds"), "legendFormat": "{{bucket}} {{step}}"}])
    common("logfile", "Log files")
    b.ts("Log lines", "Lines read per interval, parsed (JSON) or invalid. A file that stops growing while its source is up alerts.", "short",
         [{"expr": f"sum by (platform, source, result) ({over('increase', 'pulse_logfile_lines_total')})",
           "legendFormat": "{{platform}} {{source}} {{result}}"}], w=8, alerts=["PulseLogFileSilent"])
    b.ts("AI events (ai-events.log)", "AI events per second in the log by status, and the 90th percentile of the latency the log reports (right).", "short",
         [{"expr": f"sum by (status) ({over('rate', 'app_ai_log_events_total')})", "legendFormat": "{{status}} / s"},
          {"expr": f"histogram_quantile(0.9, sum by (le) ({over('rate', 'app_ai_log_latency_seconds_bucket')}))",
           "legendFormat": "p90 latency"}], w=8,
         overrides=[{"matcher": {"id": "byFrameRefID", "options": "B"},
                     "properties": [{"id": "unit", "value": "s"}, {"id": "custom.axisPlacement", "value": "right"}]}])
    b.ts("Preview builds (preview.log)", "Preview builds per second in the log by status.", "short",
         [{"expr": f"sum by (status) ({over('rate', 'app_preview_log_events_total')})", "legendFormat": "{{status}} / s"}], w=8)
    b.row("Checks")
    b.table("Checks", "Every check: OK when its last run succeeded, FAILING when not, with its duration and the series it serves.", "short",
            [{"expr": f"max by (platform, instance, source, check) ({sel('pulse_check_success')})"},
             {"expr": f"max by (platform, instance, source, check) ({sel('pulse_check_duration_seconds')})"},
             {"expr": f"max by (platform, instance, source, check) ({sel('pulse_check_series')})"}],
            w=24, h=10, alerts=["PulseCheckFailing"],
            transformations=[MERGE, organize({"Value #A": "ok", "Value #B": "duration", "Value #C": "series"})],
            overrides=[column("ok", mappings=OK_MAPPING, cell="color-background"), column("duration", unit="s")])
    return b


def queues():
    b = Board("pulse-queues-workers", "Queues and workers",
              "Queue depth, the age of the oldest waiting job, consumers, dead letters, job latency and completions; CPU and GPU worker pools and heartbeats (spot and on-demand); jobs that report in (deadlines, failures, runs).")
    b.row("Queues now")
    b.card("Redis queue depth", "Jobs waiting in each Redis queue (LLEN; an empty queue has no key and reads 0). Orange from 100, red from 500.", "short",
           redis_depth(), REDIS_QUEUE_OK, w=6, h=6, legend="{{platform}} {{queue}}", thresholds=QUEUE_DEPTH,
           alerts=["PulseJobsNotProcessed"])
    b.card("Jobs pending (Postgres)", "Jobs created and not completed yet in the platform's jobs tables (waiting or running).", "short",
           f"sum by ({by('queue')}) ({sel('app_jobs_pending')})", check_ok("app_jobs_pending"), w=6, h=6,
           legend="{{platform}} {{queue}}", thresholds=QUEUE_DEPTH, alerts=["PulseJobsNotProcessed"])
    b.number("Oldest waiting job", "How long the oldest job of each queue has waited: Redis queues (oldest item), Postgres jobs (oldest pending row) and RabbitMQ queues (head message's timestamp); 0 for an empty queue. Orange from 5 minutes, red from 10 (the alert's threshold).", "s",
             [{"expr": REDIS_OLDEST, "legendFormat": "{{queue}} (Redis)", "ok": REDIS_QUEUE_OK},
              {"expr": PG_OLDEST, "legendFormat": "{{queue}} (Postgres)", "ok": check_ok("app_jobs_oldest_pending_timestamp_seconds")},
              {"expr": RABBIT_OLDEST, "legendFormat": "{{queue}}", "ok": check_ok("queues")}],
             w=6, h=6, thresholds=JOB_AGE, color="background", alerts=["PulseOldestJobTooOld"])
    b.add("stat", "Dead letters", "Messages in dead-letter queues: work that failed after its retries. Orange from 1, red from 100; the alert fires while they keep increasing.", "short",
          [{"expr": guard(f'sum by ({by("vhost", "queue")}) ({sel("pulse_rabbitmq_queue_messages", eq("dead_letter", "true"))})', source_ok("rabbitmq")),
            "instant": True, "legendFormat": "{{queue}}"}],
          w=6, h=6, thresholds=DEAD_LETTERS, mappings=DEGRADED_MAPPING, alerts=["PulseDeadLettersIncreasing"],
          options={"reduceOptions": {"calcs": ["lastNotNull"], "values": False}, "colorMode": "background",
                   "graphMode": "area", "textMode": "value_and_name"})
    b.row("Queues")
    b.ts("Job queue depth", "Jobs waiting in the Redis AI and preview queues, and jobs pending (created, not completed) in the Postgres jobs tables.", "short",
         [{"expr": redis_depth(), "legendFormat": "{{platform}} {{queue}} (Redis)"},
          {"expr": f"sum by (platform, queue) ({sel('app_jobs_pending')})", "legendFormat": "{{platform}} {{queue}} pending (Postgres)"}],
         thresholds=QUEUE_DEPTH, alerts=["PulseJobsNotProcessed"])
    b.ts("Oldest waiting job over time", "Age of the oldest waiting job of each queue (0 when empty). The alert fires past 10 minutes.", "s",
         [{"expr": REDIS_OLDEST, "legendFormat": "{{platform}} {{queue}} (Redis)"},
          {"expr": PG_OLDEST, "legendFormat": "{{platform}} {{queue}} (Postgres)"},
          {"expr": RABBIT_OLDEST, "legendFormat": "{{platform}} {{queue}}"}],
         thresholds=JOB_AGE, alerts=["PulseOldestJobTooOld"])
    qlabels = "platform, instance, source, vhost, queue"
    b.table("RabbitMQ queues", "Each queue (dead-letter queues apart): messages ready and delivered but not acknowledged, consumers (red at 0), acknowledgements per second and the age of its oldest ready message (0 when empty).", "short",
            [{"expr": f'sum by ({qlabels}) ({sel("pulse_rabbitmq_queue_messages", eq("state", "ready"), eq("dead_letter", "false"))})'},
             {"expr": f'sum by ({qlabels}) ({sel("pulse_rabbitmq_queue_messages", eq("state", "unacked"), eq("dead_letter", "false"))})'},
             {"expr": f'max by ({qlabels}) ({sel("pulse_rabbitmq_queue_consumers", eq("dead_letter", "false"))})'},
             {"expr": f'sum by ({qlabels}) ({over("rate", "pulse_rabbitmq_queue_messages_acked_total", eq("dead_letter", "false"))})'},
             {"expr": RABBIT_OLDEST}],
            w=24, h=7, alerts=["PulseQueueNotDraining", "PulseOldestJobTooOld"],
            transformations=[MERGE, organize({"Value #A": "ready", "Value #B": "unacked", "Value #C": "consumers",
                                              "Value #D": "acked / s", "Value #E": "oldest message"})],
            overrides=[column("ready", thresholds=QUEUE_DEPTH, cell="color-text"),
                       column("consumers", thresholds=CONSUMERS, cell="color-background"),
                       column("acked / s", unit="short"),
                       column("oldest message", unit="s", thresholds=JOB_AGE, cell="color-background")])
    b.ts("RabbitMQ queue depth", "Ready and unacked messages per queue (dead-letter queues excluded).", "short",
         [{"expr": f'sum by (platform, queue, state) ({sel("pulse_rabbitmq_queue_messages", eq("dead_letter", "false"))})', "legendFormat": "{{queue}} {{state}}"}],
         w=8, thresholds=QUEUE_DEPTH, alerts=["PulseQueueNotDraining"])
    b.ts("RabbitMQ acknowledged per second", "Messages acknowledged per second per queue: a backlog with none acknowledged is not being processed.", "short",
         [{"expr": f'sum by (platform, queue) ({over("rate", "pulse_rabbitmq_queue_messages_acked_total", eq("dead_letter", "false"))})',
           "legendFormat": "{{queue}}"}], w=8, alerts=["PulseQueueNotDraining"])
    b.ts("Consumers", "Consumers attached to each queue.", "short",
         [{"expr": f'sum by (platform, queue) ({sel("pulse_rabbitmq_queue_consumers", eq("dead_letter", "false"))})', "legendFormat": "{{queue}}"}], w=8)
    b.ts("Job latency and completions", "Average seconds from job created to completed, over jobs completed in the last 1 m, 15 m and 1 h (left; orange from 30 s, red from 60 s, the alert's threshold on the 15 m window), and how many completed in each window (right): 0 completions, not a blank chart, when work stops.", "s",
         [{"expr": f"avg by (queue, window) ({sel('app_job_latency_avg_seconds')})", "legendFormat": "{{queue}} latency {{window}}"},
          {"expr": f"sum by (queue, window) ({sel('app_jobs_completed')})", "legendFormat": "{{queue}} completed {{window}}"}],
         w=24, thresholds=LATENCY, alerts=["PulseJobLatencyHigh", "PulseJobsNotProcessed"],
         overrides=[{"matcher": {"id": "byFrameRefID", "options": "B"},
                     "properties": [{"id": "unit", "value": "short"}, {"id": "custom.axisPlacement", "value": "right"},
                                    {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}]}])
    b.row("Workers")
    b.number("Workers up by pool", "Workers that beat within max_age, the minimum the pool needs (min_up in the config) and the workers known in each pool.", "short",
             [{"expr": f"sum by ({by_source('pool')}) ({sel('pulse_worker_pool_workers_up')})", "legendFormat": "{{pool}} up",
               "ok": pool_ok(), "on": "instance, source, pool"},
              {"expr": f"sum by ({by_source('pool')}) ({sel('pulse_worker_pool_min_up')})", "legendFormat": "{{pool}} minimum",
               "ok": pool_ok(), "on": "instance, source, pool"},
              {"expr": f"sum by ({by_source('pool')}) ({sel('pulse_worker_pool_workers')})", "legendFormat": "{{pool}} known",
               "ok": pool_ok(), "on": "instance, source, pool"}], w=12, h=6, alerts=["PulseWorkerPoolDown"])
    b.card("Pool capacity against its minimum", "Workers up over the minimum the pool needs (min_up in the config): red under 100 %, when the pool lacks capacity. No value for a pool whose minimum is 0 (it may scale to zero).", "percentunit",
           f"sum by ({by_source('pool')}) ({sel('pulse_worker_pool_workers_up')})\n/ (sum by ({by_source('pool')}) ({sel('pulse_worker_pool_min_up')}) > 0)",
           pool_ok(), on="instance, source, pool", w=12, h=6, legend="{{platform}} {{pool}}", thresholds=CAPACITY,
           alerts=["PulseWorkerPoolBelowMinimum", "PulseWorkerPoolDown"])
    b.ts("Heartbeat age", "Seconds since each worker's last heartbeat: green under 60 s, orange under 120 s (max_age), red beyond.", "s",
         [{"expr": f"time() - max by (platform, instance, pool, worker) ({sel('pulse_worker_last_heartbeat_timestamp_seconds')})",
           "legendFormat": "{{pool}} {{worker}}"}], w=24, thresholds=HEARTBEAT_AGE)
    wlabels = "platform, instance, source, pool, worker"
    attrs = f"{wlabels}, state, instance_type, lifecycle"
    b.table("Worker status", "Each worker: up or offline, its last heartbeat's age (green under 60 s, orange under 120 s, red beyond), and what it reports: state (healthy, active, idle; offline for a worker that is not up, never its last reported state), instance type, spot or on-demand.", "short",
            [{"expr": f"max by ({wlabels}) ({sel('pulse_worker_up')})"},
             {"expr": f"time() - max by ({wlabels}) ({sel('pulse_worker_last_heartbeat_timestamp_seconds')})"},
             {"expr": f"max by ({attrs}) ({sel('pulse_worker_info')} and on (instance, source, pool, worker) ({sel('pulse_worker_up')} == 1))"
                      f'\nor max by ({attrs}) (label_replace({sel("pulse_worker_info")} and on (instance, source, pool, worker) '
                      f'({sel("pulse_worker_up")} == 0), "state", "offline", "", ""))'}],
            w=24, h=9, alerts=["PulseWorkerPoolDown", "PulseWorkerPoolBelowMinimum"],
            transformations=[MERGE, organize({"Value #A": "status", "Value #B": "heartbeat age"}, exclude=["Value #C"],
                                             order=["platform", "instance", "source", "pool", "worker", "Value #A", "state",
                                                    "Value #B", "instance_type", "lifecycle"])],
            overrides=[column("status", cell="color-background", mappings=[{"type": "value", "options": {
                           "1": {"text": "up", "color": "green", "index": 0},
                           "0": {"text": "offline", "color": "red", "index": 1}}}]),
                       column("state", cell="color-text", mappings=[{"type": "value", "options": {
                           "offline": {"text": "offline", "color": "red", "index": 0}}}]),
                       column("heartbeat age", unit="s", thresholds=HEARTBEAT_AGE, cell="color-background")])
    b.row("Jobs that report in")
    jlabels = "platform, instance, job_name"
    b.table("Job status", "Each job that reports in (jobs: and job_keys: in the config): how far past its deadline it is (negative: time left; red once late), whether its last run failed and with which exit code, runs in flight, and the age and duration of its last success. A late job stays listed until it reports; its log tail is on the exporter's landing page.", "short",
            [{"expr": f"time() - max by ({jlabels}) ({sel('pulse_job_deadline_timestamp_seconds')})"},
             {"expr": f"max by ({jlabels}) ({sel('pulse_job_failing')})"},
             {"expr": f"max by ({jlabels}) ({sel('pulse_job_last_exit_code')})"},
             {"expr": f"max by ({jlabels}) ({sel('pulse_job_running')})"},
             {"expr": f"time() - max by ({jlabels}) ({sel('pulse_job_last_success_timestamp_seconds')})"},
             {"expr": f"max by ({jlabels}) ({sel('pulse_job_last_duration_seconds')})"}],
            w=24, h=9, alerts=["PulseJobLate", "PulseJobFailed", "PulseJobRunningTooLong"],
            transformations=[MERGE, organize({"Value #A": "past deadline", "Value #B": "last run",
                                              "Value #C": "exit code", "Value #D": "running",
                                              "Value #E": "last success", "Value #F": "last duration"},
                                             order=["platform", "instance", "job_name", "Value #A", "Value #B",
                                                    "Value #C", "Value #D", "Value #E", "Value #F"]),
                             sort_by("past deadline")],
            overrides=[column("past deadline", unit="s", cell="color-background",
                              thresholds=steps(("green", None), ("red", 0))),
                       column("last run", cell="color-background", mappings=[{"type": "value", "options": {
                           "0": {"text": "succeeded", "color": "green", "index": 0},
                           "1": {"text": "failed", "color": "red", "index": 1}}}]),
                       column("last success", unit="s"),
                       column("last duration", unit="s")])
    b.ts("Job runs", "Finished runs per job and outcome over the range: a failure shows as a red bar; a job with no bar in its scheduled hour did not run.", "short",
         [{"expr": f"sum by ({jlabels}, outcome) ({over('increase', 'pulse_job_runs_total')})",
           "legendFormat": "{{job_name}} {{outcome}}"}], w=24, stack=True,
         alerts=["PulseJobFailed"])
    return b


def latency():
    b = Board("pulse-query-latency", "Query latency",
              "Which queries are slow and which read a whole table or collection, from the databases' own statistics (pg_stat_statements, pg_stat_user_tables, MongoDB latencyStats and the profiler, Redis LATENCY HISTOGRAM and the slow log), against the same hour of past weeks.")

    def per_second(metric, window, *keys):
        """A window gauge (what moved between two reads) as a rate a second, summed by `keys`."""
        return (f"sum by ({by_source(*keys)}) ({sel(metric)})\n/ on (platform, instance, source) group_left ()\n"
                f"max by (platform, instance, source) ({sel(window)})")

    b.row("Postgres: statements")
    b.table("Top statements by time", "The statements that took the most execution time in the last window of pg_stat_statements (queryid other: the rest of the database), with their normalised text. Time is sessions busy (execution seconds a second), so the rows of a database add up to its load.", "short",
            [{"expr": per_second("pulse_postgres_statement_window_exec_seconds", "pulse_postgres_statements_window_seconds", "database", "queryid")},
             {"expr": per_second("pulse_postgres_statement_window_calls", "pulse_postgres_statements_window_seconds", "database", "queryid")},
             {"expr": f"max by ({by_source('database', 'queryid')}) ({sel('pulse_postgres_statement_window_mean_exec_seconds')})"},
             {"expr": per_second("pulse_postgres_statement_window_rows", "pulse_postgres_statements_window_seconds", "database", "queryid")},
             {"expr": f"max by ({by_source('database', 'queryid', 'text')}) ({sel('pulse_postgres_statement_info')})"}],
            w=24, h=9, alerts=["PulsePostgresStatementShareJump"],
            transformations=[MERGE, organize({"Value #A": "busy sessions", "Value #B": "calls/s", "Value #C": "mean latency", "Value #D": "rows/s"},
                                             exclude=["Value #E"],
                                             order=["platform", "instance", "source", "database", "queryid", "busy sessions", "calls/s", "mean latency", "rows/s", "text"]),
                             sort_by("busy sessions")],
            overrides=[column("mean latency", unit="s"), column("busy sessions", unit="short"), column("text", width=600)])
    b.ts("Mean statement latency against its usual", "Each database's mean statement execution time over 15 minutes (where it runs a statement a second or more), and the median of the same hour over the last weeks: PulsePostgresQueryLatencyHigh warns at twice the usual for 15 minutes.", "s",
         [{"expr": sel("latency:signal:15m", eq("signal", "postgres_mean_exec_seconds")), "legendFormat": "{{platform}} {{source}}/{{database}}"},
          {"expr": sel("latency:signal:usual", eq("signal", "postgres_mean_exec_seconds")), "legendFormat": "{{platform}} {{source}}/{{database}} usual"}],
         alerts=["PulsePostgresQueryLatencyHigh"])
    b.ts("Share of database time by statement", "Each statement's share of its database's execution time over 15 minutes: PulsePostgresStatementShareJump warns when one takes over a quarter of a busy database's time, three times its share of the hour before.", "percentunit",
         [{"expr": sel("latency:postgres_statement_share:15m"), "legendFormat": "{{platform}} {{source}}/{{database}} {{queryid}}"}],
         alerts=["PulsePostgresStatementShareJump"])

    b.row("Postgres: tables read whole")
    b.ts("Rows read whole by table", "Rows sequential scans read a second from the tables that read the most that way (pg_stat_user_tables): a big table read whole by every call is a query without an index (PulsePostgresTableScansHigh).", "short",
         [{"expr": per_second("pulse_postgres_table_window_seq_rows_read", "pulse_postgres_tables_window_seconds", "database", "schema", "table"),
           "legendFormat": "{{platform}} {{source}} {{schema}}.{{table}}"}],
         alerts=["PulsePostgresTableScansHigh"])
    b.table("Tables read whole", "The same tables: sequential and index scans a second, live and dead rows, and when each was last vacuumed and analysed.", "short",
            [{"expr": per_second("pulse_postgres_table_window_seq_rows_read", "pulse_postgres_tables_window_seconds", "database", "schema", "table")},
             {"expr": per_second("pulse_postgres_table_window_seq_scans", "pulse_postgres_tables_window_seconds", "database", "schema", "table")},
             {"expr": per_second("pulse_postgres_table_window_index_scans", "pulse_postgres_tables_window_seconds", "database", "schema", "table")},
             {"expr": f"max by ({by_source('database', 'schema', 'table')}) ({sel('pulse_postgres_table_live_rows')})"},
             {"expr": f"max by ({by_source('database', 'schema', 'table')}) ({sel('pulse_postgres_table_dead_rows')})"},
             {"expr": f"max by ({by_source('database', 'schema', 'table')}) ({sel('pulse_postgres_table_last_vacuum_timestamp_seconds')}) * 1000"},
             {"expr": f"max by ({by_source('database', 'schema', 'table')}) ({sel('pulse_postgres_table_last_analyze_timestamp_seconds')}) * 1000"}],
            w=12, alerts=["PulsePostgresTableScansHigh"],
            transformations=[MERGE, organize({"Value #A": "rows read whole/s", "Value #B": "seq scans/s", "Value #C": "index scans/s", "Value #D": "live rows",
                                              "Value #E": "dead rows", "Value #F": "vacuumed", "Value #G": "analysed"}),
                             sort_by("rows read whole/s")],
            overrides=[column("vacuumed", unit="dateTimeAsIso"), column("analysed", unit="dateTimeAsIso")])

    b.row("MongoDB")
    b.ts("Mean latency by kind of operation", "Each server's mean latency of reads, writes, commands and transactions (serverStatus opLatencies).", "s",
         [{"expr": f"sum by ({by_source('op')}) ({over('rate', 'pulse_mongodb_op_latency_seconds_total')})\n/ (sum by ({by_source('op')}) ({over('rate', 'pulse_mongodb_op_latency_operations_total')}) > 0)",
           "legendFormat": "{{platform}} {{source}} {{op}}"}])
    b.ts("Collection latency against its usual", "The mean latency of each named collection's operations over 15 minutes ($collStats latencyStats), and the median of the same hour over the last weeks: PulseMongodbCollectionLatencyHigh warns at twice the usual for 15 minutes.", "s",
         [{"expr": sel("latency:signal:15m", eq("signal", "mongodb_collection_mean_seconds")), "legendFormat": "{{platform}} {{collection}} {{op}}"},
          {"expr": sel("latency:signal:usual", eq("signal", "mongodb_collection_mean_seconds")), "legendFormat": "{{platform}} {{collection}} {{op}} usual"}],
         alerts=["PulseMongodbCollectionLatencyHigh"])
    b.ts("Collection latency p99", "The 99th percentile latency of each named collection's operations by kind, from the server's histograms (classic buckets, or native histograms where Prometheus keeps them).", "s",
         [{"expr": f"histogram_quantile(0.99, avg without (pod) (rate({raw('pulse_mongodb_collection_latency_seconds_bucket')}[$__rate_interval])))\n"
                   f"or histogram_quantile(0.99, avg without (pod) (rate({raw('pulse_mongodb_collection_latency_seconds')}[$__rate_interval])))",
           "legendFormat": "{{platform}} {{collection}} {{op}}"}])
    b.ts("Collection scans", "Queries that read a whole collection a second (serverStatus metrics.queryExecutor.collectionScans, tailable cursors aside), and the documents examined a second: the server-wide face of a findAllUsers.", "short",
         [{"expr": f"sum by ({by_source()}) ({over('rate', 'pulse_mongodb_collection_scans_total', eq('tailable', 'false'))})", "legendFormat": "{{platform}} {{source}} collection scans/s"},
          {"expr": f"sum by ({by_source()}) ({over('rate', 'pulse_mongodb_query_scanned_documents_total')})", "legendFormat": "{{platform}} {{source}} documents examined/s"}])
    b.table("Slowest query shapes (profiler)", "Where the profiler is on: the query shapes that took the most time in the last window, by namespace, operation and plan (COLLSCAN reads the whole collection). No literal value of a query is read.", "s",
            [{"expr": f"max by ({by_source('namespace', 'op', 'shape', 'plan')}) ({sel('pulse_mongodb_query_shape_window_seconds')})"},
             {"expr": f"max by ({by_source('namespace', 'op', 'shape', 'plan')}) ({sel('pulse_mongodb_query_shape_window_calls')})"},
             {"expr": f"max by ({by_source('namespace', 'op', 'shape', 'plan')}) ({sel('pulse_mongodb_query_shape_window_docs_examined')})"}],
            transformations=[MERGE, organize({"Value #A": "time", "Value #B": "calls", "Value #C": "documents examined"}), sort_by("time")],
            overrides=[column("time", unit="s"), column("calls", unit="short"), column("documents examined", unit="short")])
    b.table("Oldest running operation by namespace", "How long the longest-running active operation of each namespace has run ($currentOp).", "s",
            [{"expr": f"time() - min by ({by_source('namespace')}) ({sel('pulse_mongodb_oldest_operation_start_timestamp_seconds')})"}],
            transformations=[organize({"Value": "running for"}), sort_by("running for")])

    b.row("Redis")
    # Histograms fold their replicas with `avg`: native histograms can be averaged, not maxed.
    quantile = lambda q: (f"histogram_quantile({q}, avg without (pod) (rate({raw('pulse_redis_command_duration_seconds_bucket')}[$__rate_interval])))\n"
                          f"or histogram_quantile({q}, avg without (pod) (rate({raw('pulse_redis_command_duration_seconds')}[$__rate_interval])))")
    b.ts("Command latency p99", "The 99th percentile latency of each of the most called commands, from the server's own histograms (LATENCY HISTOGRAM, Redis 7+): PulseRedisCommandSlow warns when it stays above the source's p99_limit.", "s",
         [{"expr": quantile("0.99"), "legendFormat": "{{platform}} {{source}} {{command}}"},
          {"expr": sel("pulse_redis_command_p99_limit_seconds"), "legendFormat": "{{platform}} {{source}} limit"}],
         alerts=["PulseRedisCommandSlow"])
    b.ts("Command latency p50", "The median latency of each of the most called commands.", "s",
         [{"expr": quantile("0.5"), "legendFormat": "{{platform}} {{source}} {{command}}"}])
    b.table("Commands", "The most called commands: calls, mean latency, failed and rejected calls a second (INFO commandstats).", "short",
            [{"expr": f"sum by ({by_source('command')}) ({over('rate', 'pulse_redis_command_calls_total')})"},
             {"expr": f"sum by ({by_source('command')}) ({over('rate', 'pulse_redis_command_seconds_total')})\n/ (sum by ({by_source('command')}) ({over('rate', 'pulse_redis_command_calls_total')}) > 0)"},
             {"expr": f"sum by ({by_source('command')}) ({over('rate', 'pulse_redis_command_failed_calls_total')})"},
             {"expr": f"sum by ({by_source('command')}) ({over('rate', 'pulse_redis_command_rejected_calls_total')})"}],
            transformations=[MERGE, organize({"Value #A": "calls/s", "Value #B": "mean latency", "Value #C": "failed/s", "Value #D": "rejected/s"}), sort_by("calls/s")],
            overrides=[column("mean latency", unit="s")])
    b.ts("Slow log", "Entries added to the slow log a second, and the slowest entry of each command in the last window (command names only, never their arguments).", "s",
         [{"expr": f"sum by ({by_source()}) ({over('rate', 'pulse_redis_slowlog_entries_total')})", "legendFormat": "{{platform}} {{source}} entries/s"},
          {"expr": sel("pulse_redis_slowlog_slowest_seconds"), "legendFormat": "{{platform}} {{source}} slowest {{command}}"}],
         overrides=[{"matcher": {"id": "byFrameRefID", "options": "A"}, "properties": [{"id": "unit", "value": "short"}]}])
    return b


def main():
    boards = [admin(), health(), queues(), latency()]
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
