#!/usr/bin/env python3
"""Writes alerts/tests/query-latency.test.yml: promtool cases for the query latency alerts
(prometheus/rules/pulse-latency.yml and the pulse-query-latency group of alerts/pulse-alerts.yml)
over two weeks of a weekly rhythm, too long to write by hand.

The rhythm of a database: from 08:00 to 20:00 on weekdays 100 statements a second taking
2 ms on average, with a busy hour at 12:00 where they take 6 ms (the lunch peak: slower
every weekday, so usual); 50 a second on weekend days; 0.5 a second at night. promtool's
clock starts on Thursday 1970-01-01 00:00 UTC, so day 14 is a Thursday and days 2, 3, 9 and
10 are weekends. Two weeks of history come first (the usual needs two), then the cases of
day 14, each from its own exporter (`instance`) so one replay of the weeks serves them all.

The exporter publishes what each statement and table did over its last window (60 s here):
the series below are those gauges, sampled every 5 minutes, as Prometheus would keep them.

Run it after changing the rules or the cases, and commit the file; `--check` fails when the
file is stale (tests/bundle.rs runs both).
"""

import os
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "alerts", "tests", "query-latency.test.yml")

STEP_MIN = 5
DAY = 24 * 60
WINDOW = 60
RUNBOOK = "https://github.com/pulse-exporter/pulse-exporter/blob/main/alerts/runbook.md#"
CASE_DAY = 14
DAYS = CASE_DAY + 1


def target(case, **more):
    return {"job": "pulse-exporter", "instance": f"{case}:7857", "platform": "hayon", **more}


def steps():
    """(day, minute) of every sample from 00:00 of day 0."""
    for i in range(DAYS * DAY // STEP_MIN + 1):
        yield divmod(i * STEP_MIN, DAY)


def weekend(day):
    return day % 7 in (2, 3)


def calls_per_second(day, minute):
    if not 8 * 60 <= minute < 20 * 60:
        return 0.5
    return 50 if weekend(day) else 100


def mean_ms(day, minute):
    if 12 * 60 <= minute < 13 * 60 and not weekend(day):
        return 6.0
    return 2.0


def expand(values):
    """promtool's expanding notation: runs of equal steps as `a+bxn`."""
    parts, i = [], 0
    while i < len(values):
        j = i + 1
        if j < len(values):
            step = round(values[j] - values[i], 9)
            while j + 1 < len(values) and round(values[j + 1] - values[j], 9) == step:
                j += 1
            sign = "+" if step >= 0 else "-"
            parts.append(f"{values[i]:.10g}{sign}{abs(step):.10g}x{j - i}")
            i = j + 1
        else:
            parts.append(f"{values[i]:.10g}")
            i = j
    return " ".join(parts)


def series(metric, labels, values):
    shown = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{metric}{{{shown}}}", "values": expand(values)}


def during(start, end, day=CASE_DAY):
    return lambda d, m: d == day and start * 60 <= m < end * 60


def database(case, slow=None, night_ms=None):
    """A database's statements as the exporter publishes them: one statement and `other`,
    sharing the calls 30/70 at the same mean latency. `slow(day, minute)` makes every
    statement take 20 ms; `night_ms` is the mean at night."""
    calls, exec_s = {"1": [], "other": []}, {"1": [], "other": []}
    for day, minute in steps():
        c = calls_per_second(day, minute) * WINDOW
        ms = mean_ms(day, minute)
        if slow and slow(day, minute):
            ms = 20.0
        if night_ms and calls_per_second(day, minute) < 1:
            ms = night_ms
        for q, share in [("1", 0.3), ("other", 0.7)]:
            calls[q].append(c * share)
            exec_s[q].append(c * share * ms / 1000)
    out = [series("pulse_postgres_statements_window_seconds", target(case, source="db"), [WINDOW] * len(calls["1"]))]
    for q in calls:
        labels = target(case, source="db", database="app", queryid=q)
        out.append(series("pulse_postgres_statement_window_calls", labels, calls[q]))
        out.append(series("pulse_postgres_statement_window_exec_seconds", labels, exec_s[q]))
    return out


def share_jump(case, new_query=None):
    """A database whose statement 1 always takes 60 % of the time; `new_query(day, minute)`
    adds statement 999, taking twice as much as all the others together."""
    out = [series("pulse_postgres_statements_window_seconds", target(case, source="db"), [WINDOW] * len(list(steps())))]
    rows = {"1": [], "other": [], "999": []}
    for day, minute in steps():
        busy = calls_per_second(day, minute) * WINDOW * mean_ms(day, minute) / 1000
        rows["1"].append(busy * 0.6)
        rows["other"].append(busy * 0.4)
        rows["999"].append(busy * 2 if new_query and new_query(day, minute) else None)
    for q, values in rows.items():
        if all(v is None for v in values):
            continue
        labels = target(case, source="db", database="app", queryid=q)
        out.append({"series": series("pulse_postgres_statement_window_exec_seconds", labels, [0])["series"],
                    "values": with_gaps(values)})
    return out


def with_gaps(values):
    """Expanding notation where None is no sample: the series goes stale at once (a row the
    exporter stopped publishing) and stays absent until its next value."""
    parts, run, i = [], [], 0
    while i < len(values):
        if values[i] is not None:
            run.append(values[i])
            i += 1
            continue
        if run:
            parts.append(expand(run))
            run = []
        j = i
        while j < len(values) and values[j] is None:
            j += 1
        gap = j - i
        if parts:
            parts.append("stale")
            gap -= 1
        if gap > 0:
            parts.append(f"_x{gap}")
        i = j
    if run:
        parts.append(expand(run))
    return " ".join(parts)


def table(case, scan=None):
    """The users table (200,000 live rows): read whole a few times a day at night (a report),
    and by every call of `scan(day, minute)` (a query that lost its index): 2 million rows a
    window."""
    read, live = [], []
    for day, minute in steps():
        rows = 0
        if 2 * 60 <= minute < 2 * 60 + 10:
            rows = 200_000
        if scan and scan(day, minute):
            rows = 2_000_000
        read.append(rows if rows else None)
        live.append(200_000)
    labels = target(case, source="db", database="app", schema="public", table="users")
    return [
        series("pulse_postgres_tables_window_seconds", target(case, source="db"), [WINDOW] * len(live)),
        {"series": series("pulse_postgres_table_window_seq_rows_read", labels, [0])["series"],
         "values": with_gaps(read)},
        series("pulse_postgres_table_live_rows", labels, live),
    ]


def plan_changes(case, at):
    """Statement 1's plan changes as the exporter counts them: explained on day 0, its plan
    changing once at `at` (hours into the case day)."""
    values = [1 if (d, m) >= (CASE_DAY, at * 60) else 0 for d, m in steps()]
    labels = target(case, source="db", database="app", queryid="1")
    return [series("pulse_postgres_statement_plan_changes_total", labels, values)]


def collection(case, slow=None):
    """The users collection's reads as a classic histogram's sum and count (counters): the
    database rhythm's calls at 1 ms, 30 ms while `slow`."""
    total_s, count, s, c = [], [], 0.0, 0.0
    for day, minute in steps():
        total_s.append(round(s, 6))
        count.append(c)
        ops = calls_per_second(day, minute) * STEP_MIN * 60
        ms = 30.0 if slow and slow(day, minute) else 1.0
        c += ops
        s += ops * ms / 1000
    labels = target(case, source="mongo", database="app", collection="users", op="reads")
    return [
        series("pulse_mongodb_collection_latency_seconds_sum", labels, total_s),
        series("pulse_mongodb_collection_latency_seconds_count", labels, count),
    ]


REDIS_BOUNDS = ["8e-06", "3.3e-05", "0.001056", "0.016908", "1.073741", "+Inf"]


REDIS_STEP_MIN = 1
REDIS_DAYS = 1


def redis(case, slow=None):
    """GET's latency histogram (cumulative counters by bucket): 1,000 calls a second, 99.5 %
    under 8 µs; while `slow`, 2.5 % take 1 to 17 ms (a big key or a fork). Sampled every
    minute over one day: the alert needs no history, and a 5-minute rate needs samples closer
    than 5 minutes (Prometheus 3 leaves a range's left edge out)."""
    cumulative = {le: [] for le in REDIS_BOUNDS}
    totals = {le: 0.0 for le in REDIS_BOUNDS}
    usec = []
    total_usec = 0.0
    for i in range(REDIS_DAYS * DAY // REDIS_STEP_MIN + 1):
        day, minute = divmod(i * REDIS_STEP_MIN, DAY)
        for le in REDIS_BOUNDS:
            cumulative[le].append(totals[le])
        usec.append(total_usec)
        n = 1000 * REDIS_STEP_MIN * 60
        shares = [0.995, 1.0, 1.0, 1.0, 1.0, 1.0]
        if slow and slow(day, minute):
            shares = [0.97, 0.975, 0.975, 1.0, 1.0, 1.0]
        for le, share in zip(REDIS_BOUNDS, shares):
            totals[le] += n * share
        total_usec += n * (10 if not (slow and slow(day, minute)) else 300)
    out = []
    for le in REDIS_BOUNDS:
        out.append(series("pulse_redis_command_duration_seconds_bucket", target(case, source="cache", command="get", le=le), cumulative[le]))
    out.append(series("pulse_redis_command_duration_seconds_count", target(case, source="cache", command="get"), cumulative["+Inf"]))
    out.append(series("pulse_redis_command_duration_seconds_sum", target(case, source="cache", command="get"), [u / 1e6 for u in usec]))
    out.append(series("pulse_redis_command_p99_limit_seconds", target(case, source="cache"), [0.01] * len(usec)))
    return out


def alert(name, case, labels, summary, description):
    return {
        "exp_labels": {**target(case), **labels, "severity": "warning"},
        "exp_annotations": {"summary": summary, "description": description, "runbook_url": RUNBOOK + name.lower()},
    }


def evals(alertname, times, day=CASE_DAY):
    return [{"eval_time": f"{day}d{t}", "alertname": alertname, "exp_alerts": a} for t, a in times]


SLOW = during(15, 17)

PG_SLOW = alert(
    "PulsePostgresQueryLatencyHigh", "pg-slow",
    {"source": "db", "database": "app", "signal": "postgres_mean_exec_seconds"},
    "Statements of db/app take 20ms on average, over twice the usual",
    "The mean execution time of the statements of database app on db (pg-slow:7857) over the last 15 minutes is 20ms, over twice the median of the same hour over the last weeks (2ms), for 15 minutes. The Query latency dashboard shows which statements took the time.",
)
MONGO_SLOW = alert(
    "PulseMongodbCollectionLatencyHigh", "mongo-slow",
    {"source": "mongo", "database": "app", "collection": "users", "op": "reads", "signal": "mongodb_collection_mean_seconds"},
    "reads of app.users take 30ms on average, over twice the usual",
    "The mean latency of reads on collection app.users of mongo (mongo-slow:7857) over the last 15 minutes is 30ms, over twice the median of the same hour over the last weeks (1ms), for 15 minutes.",
)
TABLE_SCAN = alert(
    "PulsePostgresTableScansHigh", "table-scan",
    {"source": "db", "database": "app", "schema": "public", "table": "users", "signal": "postgres_table_seq_rows_per_second"},
    "Table app.public.users is read whole at 33.33k rows/s",
    "Sequential scans of public.users (200k live rows) in database app on db (table-scan:7857) read 33.33k rows a second over the last 15 minutes, over twice what the same hour usually reads, for 15 minutes: a query that filters it without an index.",
)
SHARE = alert(
    "PulsePostgresStatementShareJump", "share-jump",
    {"source": "db", "database": "app", "queryid": "999"},
    "Statement 999 takes 66.67% of the time of db/app",
    "Statement 999 took 66.67% of the execution time of database app on db (share-jump:7857) over the last 15 minutes, up from under a third of that an hour before, for 15 minutes. Its text is in pulse_postgres_statement_info and on the Query latency dashboard.",
)
PLAN_WORSE = alert(
    "PulsePostgresPlanChanged", "plan-worse",
    {"source": "db", "database": "app", "queryid": "1", "signal": "postgres_statement_mean_exec_seconds"},
    "Statement 1 of db/app changed plan and takes 20ms, over twice its usual",
    "Statement 1 of database app on db (plan-worse:7857) changed plan in the last 6 hours, and its mean execution time over the last 15 minutes is 20ms, over twice the median of the same hour over the last weeks (2ms), for 15 minutes. Its text is in pulse_postgres_statement_info.",
)
PLAN_WORSE_DB = alert(
    "PulsePostgresQueryLatencyHigh", "plan-worse",
    {"source": "db", "database": "app", "signal": "postgres_mean_exec_seconds"},
    "Statements of db/app take 20ms on average, over twice the usual",
    "The mean execution time of the statements of database app on db (plan-worse:7857) over the last 15 minutes is 20ms, over twice the median of the same hour over the last weeks (2ms), for 15 minutes. The Query latency dashboard shows which statements took the time.",
)
REDIS_SLOW = alert(
    "PulseRedisCommandSlow", "redis-slow",
    {"source": "cache", "command": "get"},
    "Redis command get on cache: 99th percentile 10.57ms",
    "The 99th percentile latency of get on cache (redis-slow:7857) over 5 minutes is 10.57ms, above the source's p99_limit (10ms), for 15 minutes.",
)

CASES = [
    "Day 14 is a Thursday; each exporter (instance) is one case:",
    "pg-slow: every statement takes 20 ms from 15:00 to 17:00 instead of 2: it fires.",
    "pg-busy: the usual lunch peak at 12:00, 6 ms every weekday: quiet.",
    "pg-night: statements take 50 ms every night, at half a statement a second: too few to judge.",
    "mongo-slow: reads of users take 30 ms from 15:00 to 17:00 instead of 1: it fires.",
    "table-scan: users (200,000 rows) read whole by every call from 15:00 to 17:00, where it",
    "  is usually read whole once a night: it fires; the nightly report stays quiet.",
    "share-jump: statement 999 appears at 15:00 and takes two thirds of the time: it fires;",
    "  statement 1, always 60 %, stays quiet.",
    "plan-worse: statement 1 changes plan at 14:50 and takes 20 ms from 15:00 instead of 2:",
    "  it fires (pg-slow, as slow without a plan change, does not); so does the database's",
    "  latency alert, which Alertmanager inhibits behind it.",
    "plan-same: statement 1 changes plan at 14:50 and takes what it always took: quiet.",
    "Then, over one day sampled every minute (day 0, a Thursday):",
    "redis-slow: 2.5 % of GETs take a millisecond or more from 15:00 to 17:00: the p99 passes",
    "  the 10 ms limit and it fires; redis-ok stays quiet.",
]


def tests():
    inputs = [
        *database("pg-slow", slow=SLOW),
        *database("pg-busy"),
        *database("pg-night", night_ms=50.0),
        *collection("mongo-slow", slow=SLOW),
        *table("table-scan", scan=SLOW),
        *share_jump("share-jump", new_query=during(15, 24)),
        *database("plan-worse", slow=SLOW),
        *plan_changes("plan-worse", at=14 + 50 / 60),
        *database("plan-same"),
        *plan_changes("plan-same", at=14 + 50 / 60),
    ]
    checks = (
        evals("PulsePostgresQueryLatencyHigh", [("3h", []), ("12h30m", []), ("14h55m", []), ("15h40m", [PG_SLOW, PLAN_WORSE_DB]), ("18h", [])])
        + evals("PulseMongodbCollectionLatencyHigh", [("12h30m", []), ("15h40m", [MONGO_SLOW]), ("18h", [])])
        + evals("PulsePostgresTableScansHigh", [("2h10m", []), ("12h", []), ("15h40m", [TABLE_SCAN]), ("18h", [])])
        + evals("PulsePostgresStatementShareJump", [("12h", []), ("15h40m", [SHARE])])
        + evals("PulsePostgresPlanChanged", [("12h30m", []), ("14h55m", []), ("15h40m", [PLAN_WORSE]), ("18h", [])])
    )
    redis_inputs = [*redis("redis-slow", slow=during(15, 17, day=0)), *redis("redis-ok")]
    redis_checks = evals("PulseRedisCommandSlow", [("12h", []), ("15h40m", [REDIS_SLOW]), ("18h", [])], day=0)
    return {
        "rule_files": [
            "../../prometheus/rules/pulse-business.yml",
            "../../prometheus/rules/pulse-latency.yml",
            "../pulse-alerts.yml",
        ],
        "evaluation_interval": "15m",
        "group_eval_order": ["pulse-business-signals", "pulse-query-latency-signals", "pulse-query-latency"],
        "tests": [
            {"interval": f"{STEP_MIN}m", "input_series": inputs, "alert_rule_test": checks},
            {"interval": f"{REDIS_STEP_MIN}m", "input_series": redis_inputs, "alert_rule_test": redis_checks},
        ],
    }


def render():
    header = "# Generated by scripts/query-latency-tests.py; do not edit by hand.\n" \
             "# promtool test rules alerts/tests/query-latency.test.yml: the query latency alerts over\n" \
             "# two weeks of a weekly rhythm, with the cases they must catch and those where they must\n" \
             "# stay quiet.\n"
    body = yaml.safe_dump(tests(), sort_keys=False, width=1000)
    lines = body.splitlines()
    i = lines.index("tests:") + 1
    comments = [f"# {c}" for c in CASES]
    return header + "\n".join(lines[:i] + comments + lines[i:]) + "\n"


def main():
    text = render()
    if "--check" in sys.argv:
        with open(OUT, encoding="utf-8") as f:
            if f.read() != text:
                sys.exit(f"{OUT} is stale: run scripts/query-latency-tests.py and commit it")
        return
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)
    print(OUT)


if __name__ == "__main__":
    main()
