#!/usr/bin/env python3
"""Writes alerts/tests/business-rhythm.test.yml: promtool cases for the business alerts
(PulseBusinessSignalLow, PulseStripePaymentsFailing) over a realistic weekly rhythm, three
weeks of it, too long to write by hand.

The rhythm: 40 signups an hour from 08:00 to 20:00 on weekdays, 24 on weekend days (40 %
lower), 4 at night; AI requests ten times that, successful payments half of it with one
decline in ten. promtool's clock starts on Thursday 1970-01-01 00:00 UTC, so days 2 and 3
of each week are the weekend. Three weeks of history come first; day 21 (a Thursday) and
day 23 (a Saturday) hold the cases, each from its own exporter (`instance`) so that one
replay of the weeks serves them all.

Samples and evaluations are 15 minutes apart: the rules judge hours, and promtool replays
every rule at every step, so a finer step only costs CI time.

Run it after changing the rules or the cases, and commit the file; `--check` fails when the
file is stale (tests/bundle.rs runs both). `--generated RULES OUT` writes the signup cases for
the rules `pulse-exporter rules` generated from examples/hivesync-joip.yml (tests/generated.rs):
the drop alert of a check (`drop:`) must pass them as the bundle's does.
"""

import os
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "alerts", "tests", "business-rhythm.test.yml")

STEP_MIN = 15
PER_HOUR = 60 // STEP_MIN
DAY = 24 * 60
RUNBOOK = "https://github.com/pulse-exporter/pulse-exporter/blob/main/alerts/runbook.md#"
# The day the cases happen on (a Thursday) and the weekend day after it (a Saturday).
CASE_DAY = 21
WEEKEND_DAY = 23


def target(case, platform, **more):
    """The labels of a series scraped from the exporter of `case`; the app's own metrics carry
    no `source`, the exporter's (`pulse_…`) do."""
    return {"job": "pulse-exporter", "instance": f"{case}:7857", "platform": platform, **more}


def usual_per_hour(day, minute):
    """Signups an hour in the usual rhythm at `minute` of `day`."""
    if not 8 * 60 <= minute < 20 * 60:
        return 4
    return 24 if day % 7 in (2, 3) else 40


def rates(days, scale=1.0, change=None):
    """The per-hour rate at each sample from 00:00 of day 0 for `days` days; `change(day,
    minute, usual)` may give another rate for a sample."""
    out = []
    for i in range(days * DAY // STEP_MIN + 1):
        day, minute = divmod(i * STEP_MIN, DAY)
        rate = usual_per_hour(day, minute) * scale
        out.append(change(day, minute, rate) if change else rate)
    return out


def cumulative(per_hour, start=1000):
    """A gauge or counter growing by `per_hour` an hour, sample by sample."""
    total, out = start, []
    for r in per_hour:
        out.append(total)
        total += r / PER_HOUR
    return out


def expand(values):
    """promtool's expanding notation: runs of equal steps as `a+bxn`."""
    parts, i = [], 0
    while i < len(values):
        j = i + 1
        if j < len(values):
            step = values[j] - values[i]
            while j + 1 < len(values) and values[j + 1] - values[j] == step:
                j += 1
            sign = "+" if step >= 0 else "-"
            parts.append(f"{values[i]:g}{sign}{abs(step):g}x{j - i}")
            i = j + 1
        else:
            parts.append(f"{values[i]:g}")
            i = j
    return " ".join(parts)


def last_hour(per_hour):
    """A check's count over the sliding last hour (`window="1h"`) at each sample."""
    total = cumulative(per_hour, 0)
    return [t - total[max(i - PER_HOUR, 0)] for i, t in enumerate(total)]


def series(metric, labels, values):
    shown = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{metric}{{{shown}}}", "values": expand(values)}


def between(day0, start, end, value):
    """A change: `value(rate)` instead of the rate on `day0` from minute `start` to `end`."""
    return lambda day, m, rate: value(rate) if day == day0 and start <= m < end else rate


def stop(day0, start, end=DAY):
    return between(day0, start, end, lambda _: 0)


def signups(case, days, change=None):
    return series("app_users_registered", target(case, "hivesync"), cumulative(rates(days, 1, change)))


# Daylight saving: a European platform (global.timezone Europe/Berlin) whose rhythm follows
# its local clock. The clocks change on day 17, a Sunday, at 01:00 UTC: back from UTC+2 to
# UTC+1 in autumn, forward from UTC+1 to UTC+2 in spring. Its 08:00 ramp then moves by an hour
# in UTC, and the Monday and Tuesday after the change must not look an hour off the usual.
DST_DAY = 17
DST_AT = DST_DAY * DAY + 60


def offset_at(i, before, after):
    """The platform's UTC offset in seconds at sample `i`."""
    return before if i * STEP_MIN < DST_AT else after


def local_signups(case, days, before, after, change=None):
    """Signups following the usual rhythm on the platform's local clock, and its offset series
    (pulse_timezone_offset_seconds) as the exporter publishes it. `change(day, minute, rate)`
    works on local time too."""
    per_hour, offsets = [], []
    for i in range(days * DAY // STEP_MIN + 1):
        off = offset_at(i, before, after)
        day, minute = divmod(i * STEP_MIN + off // 60, DAY)
        rate = usual_per_hour(day, minute)
        per_hour.append(change(day, minute, rate) if change else rate)
        offsets.append(off)
    return [
        series("app_users_registered", target(case, "hivesync"), cumulative(per_hour)),
        series("pulse_timezone_offset_seconds", target(case, "hivesync", timezone="Europe/Berlin"), offsets),
    ]


def payments(case, days, succeeded=None, failed=None):
    """The Stripe source's counters of PaymentIntent outcomes: half the signup rhythm
    succeeds and a tenth of that is declined, unless `succeeded`/`failed` change it."""
    out = []
    for event_type, scale, change in [
        ("payment_intent.succeeded", 0.5, succeeded),
        ("payment_intent.payment_failed", 0.05, failed),
    ]:
        labels = target(case, "hayon", source="stripe", account="", event_type=event_type)
        out.append(series("pulse_stripe_events_read_total", labels, cumulative(rates(days, scale, change), 0)))
    return out


def signal_low(case, platform, signal, value, usual, **more):
    # Payments falling loses money every hour: they page; the other signals go to chat.
    severity = "critical" if signal == "payments" else "warning"
    return {
        "exp_labels": {**target(case, platform, **more), "signal": signal, "severity": severity},
        "exp_annotations": {
            "summary": f"{signal} far below the usual for this hour of the week",
            "description": f"{signal} of {platform} on {case}:7857: {value} in the last hour, under "
            f"half the median of the same hour over the last weeks ({usual}), for 15 minutes.",
            "runbook_url": RUNBOOK + "pulsebusinesssignallow",
        },
    }


def evals(alertname, times):
    return [
        {"eval_time": t, "alertname": alertname, "exp_alerts": alerts}
        for t, alerts in times
    ]


def at(day, time):
    return f"{day}d{time}"


D, W = CASE_DAY, WEEKEND_DAY
STOPPED = signal_low("stop", "hivesync", "signups", "0", "40")
AI_STOPPED = signal_low("ai", "hivesync", "ai_requests", "0", "400")
PAID_STOPPED = signal_low("paid-stop", "hayon", "payments", "0", "20", source="stripe")
DST_STOPPED = signal_low("dst-stop", "hivesync", "signups", "0", "40")
FAILING = {
    "exp_labels": {**target("paid-fail", "hayon", source="stripe"), "object": "payment_intent", "severity": "critical"},
    "exp_annotations": {
        "summary": "75% of the payment_intent payments of stripe failed in the last hour",
        "description": "Stripe source stripe on paid-fail:7857: 75% of the payment_intent payment "
        "attempts of the last hour failed (payment_intent.payment_failed events), for 15 minutes.",
        "runbook_url": RUNBOOK + "pulsestripepaymentsfailing",
    },
}

# The signup cases, each its own exporter: (case, the change to the rhythm), and the case
# with a first week of history only: (days, the change). The bundle's rules and a `drop:`
# check's generated rule take the same ones.
SIGNUP_CASES = [
    ("stop", stop(D, 12 * 60, 14 * 60)),
    ("night", stop(D, 0, 7 * 60)),
    ("dip", between(D, 12 * 60, 13 * 60, lambda r: r * 0.7)),
    ("weekend", None),
]
FIRST_WEEK = (8, stop(7, 12 * 60))

TESTS = [
    (
        [
            "Day 21 is a Thursday, day 23 a Saturday; each exporter (instance) is one case:",
            "stop: signups stop at 12:00 and resume at 14:00: it fires within the hour and a",
            "  quarter and resolves once the last hour is normal again.",
            "night: no signup at all from 00:00 to 07:00: the usual night is too small to judge.",
            "dip: a one-hour dip of 30 % at midday: quiet.",
            "weekend: the Saturday, 40 % lower than weekdays as every weekend is: quiet.",
            "ai: AI requests stop from 12:00 to 16:00 (the provider returns nothing): it fires.",
            "paid-stop: no payment succeeds from 12:00 to 16:00 (checkout broken): it fires.",
            "paid-fail: three payments in four fail from 12:00 to 16:00: the failure share fires,",
            "  while the usual one decline in ten stays quiet.",
            "dst-autumn: a platform on Europe/Berlin time; the clocks go back on day 17 (Sunday):",
            "  its 08:00 ramp comes at 07:00 UTC instead of 06:00. The Monday and Tuesday after,",
            "  the usual is read an hour further back: quiet.",
            "dst-spring: the clocks go forward on day 17: the evening falls off at 18:00 UTC",
            "  instead of 19:00. The Monday evening after: quiet.",
            "dst-stop: the autumn platform's signups stop from 10:00 to 14:00 local on the Monday",
            "  after the change: it fires, the local usual being 40 an hour.",
        ],
        W + 1,
        lambda days: [
            *[signups(case, days, change) for case, change in SIGNUP_CASES],
            series(
                "app_ai_requests",
                target("ai", "hivesync", window="1h"),
                last_hour(rates(days, 10, stop(D, 12 * 60, 16 * 60))),
            ),
            *payments("paid-stop", days, succeeded=stop(D, 12 * 60, 16 * 60)),
            *payments(
                "paid-fail",
                days,
                succeeded=between(D, 12 * 60, 16 * 60, lambda r: r * 0.5),
                failed=between(D, 12 * 60, 16 * 60, lambda r: r * 15),
            ),
            *local_signups("dst-autumn", days, 7200, 3600),
            *local_signups("dst-spring", days, 3600, 7200),
            *local_signups("dst-stop", days, 7200, 3600, stop(DST_DAY + 1, 10 * 60, 14 * 60)),
        ],
        evals(
            "PulseBusinessSignalLow",
            [
                (at(D, "3h"), []),
                (at(D, "6h30m"), []),
                (at(D, "11h45m"), []),
                (at(D, "12h15m"), []),
                (at(D, "13h15m"), [STOPPED, AI_STOPPED, PAID_STOPPED]),
                (at(D, "13h45m"), [STOPPED, AI_STOPPED, PAID_STOPPED]),
                (at(D, "15h30m"), [AI_STOPPED, PAID_STOPPED]),
                (at(D, "18h"), []),
                (at(W, "11h"), []),
                (at(W, "15h"), []),
                (at(W, "19h"), []),
                # The Monday and Tuesday after the change, around the morning ramp and the
                # evening fall in UTC (dst-stop fires from its stop at 09:00 UTC).
                (at(DST_DAY + 1, "6h45m"), []),
                (at(DST_DAY + 1, "7h15m"), []),
                (at(DST_DAY + 1, "7h45m"), []),
                (at(DST_DAY + 1, "10h15m"), [DST_STOPPED]),
                (at(DST_DAY + 1, "18h45m"), []),
                (at(DST_DAY + 1, "19h15m"), []),
                (at(DST_DAY + 2, "7h15m"), []),
                (at(DST_DAY + 2, "18h45m"), []),
            ],
        )
        + evals(
            "PulseStripePaymentsFailing",
            [
                (at(D, "11h45m"), []),
                (at(D, "13h15m"), [FAILING]),
                (at(D, "18h"), []),
            ],
        ),
    ),
    (
        [
            "One week of history only: nothing is usual yet, so signups stopping fire nothing",
            "(the usual needs two weeks).",
        ],
        FIRST_WEEK[0],
        lambda days: [signups("stop", days, FIRST_WEEK[1])],
        evals("PulseBusinessSignalLow", [(at(7, "13h15m"), [])]),
    ),
]


# The check of examples/hivesync-joip.yml with `drop:`: signups in the last hour, a gauge.
EXAMPLE_CHECK = {"metric": "app_users_signups_1h", "source": "app-db"}


def generated_tests(rules_file, out_file):
    """The signup cases again, through the PulseBusinessSignalLow rule that `pulse-exporter
    rules` wrote for the example's signups check into `rules_file`; a promtool file to
    `out_file` (beside it). The expected annotations are the rule's own, filled in."""
    with open(rules_file, encoding="utf-8") as f:
        rules = yaml.safe_load(f)
    check = EXAMPLE_CHECK["metric"]
    rule = next(
        r
        for g in rules["groups"]
        for r in g["rules"]
        if r.get("alert") == "PulseBusinessSignalLow" and r["labels"]["check"] == check
    )

    def firing(case, value):
        labels = {**target(case, "hivesync"), **rule["labels"]}
        notes = {
            k: v.replace("{{ $value | humanize }}", value).replace("{{ $labels.instance }}", f"{case}:7857")
            for k, v in rule["annotations"].items()
        }
        assert "{{" not in "".join(notes.values()), notes
        return {"exp_labels": labels, "exp_annotations": notes}

    def gauge(case, days, change=None):
        return series(check, target(case, "hivesync"), last_hour(rates(days, 1, change)))

    days = W + 1
    tests = [
        {
            "interval": f"{STEP_MIN}m",
            "input_series": [gauge(case, days, change) for case, change in SIGNUP_CASES],
            "alert_rule_test": evals(
                "PulseBusinessSignalLow",
                [
                    (at(D, "3h"), []),
                    (at(D, "6h30m"), []),
                    (at(D, "12h15m"), []),
                    (at(D, "13h15m"), [firing("stop", "0")]),
                    (at(D, "15h30m"), []),
                    (at(W, "11h"), []),
                    (at(W, "15h"), []),
                    (at(W, "19h"), []),
                ],
            ),
        },
        {
            "interval": f"{STEP_MIN}m",
            "input_series": [gauge("stop", *FIRST_WEEK)],
            "alert_rule_test": evals("PulseBusinessSignalLow", [(at(7, "13h15m"), [])]),
        },
    ]
    doc = {
        "rule_files": [os.path.basename(rules_file)],
        "evaluation_interval": f"{STEP_MIN}m",
        "tests": tests,
    }
    with open(out_file, "w", encoding="utf-8") as f:
        yaml.safe_dump(doc, f, sort_keys=False, width=1000)


def render():
    doc = {
        "rule_files": ["../../prometheus/rules/pulse-business.yml", "../pulse-alerts.yml"],
        "evaluation_interval": f"{STEP_MIN}m",
        # The recorded counts first at each step: the alerts read them, and a value recorded
        # a whole step before is older than the 5m lookback.
        "group_eval_order": ["pulse-business-signals", "pulse-business"],
        "tests": [
            {"interval": f"{STEP_MIN}m", "input_series": make(days), "alert_rule_test": cases}
            for _, days, make, cases in TESTS
        ],
    }
    text = yaml.safe_dump(doc, sort_keys=False, width=1000, default_flow_style=False)
    # Each test's comment above it.
    out = []
    comments = iter([c for c, *_ in TESTS])
    for line in text.splitlines():
        if line.startswith("- interval:"):
            out.extend(f"# {c}" for c in next(comments))
        out.append(line)
    header = [
        "# Generated by scripts/business-rhythm-tests.py; do not edit by hand.",
        "# promtool test rules alerts/tests/business-rhythm.test.yml: the business alerts over three",
        "# weeks of a weekly rhythm (day and night, weekdays and weekends), with the cases they must",
        "# catch and those where they must stay quiet.",
    ]
    return "\n".join(header + out) + "\n"


if __name__ == "__main__":
    if "--generated" in sys.argv:
        i = sys.argv.index("--generated")
        generated_tests(sys.argv[i + 1], sys.argv[i + 2])
        sys.exit(0)
    text = render()
    if "--check" in sys.argv:
        with open(OUT, encoding="utf-8") as f:
            if f.read() != text:
                sys.exit("alerts/tests/business-rhythm.test.yml is stale: run scripts/business-rhythm-tests.py")
        sys.exit(0)
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)
