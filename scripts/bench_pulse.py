"""What the scripts that run pulse-exporter itself to measure it share (scripts/bench-footprint,
scripts/order-symbols): the bench config, and how many times each check has run, read from
a scrape (a statistics check serves its rates from its second run, so a measurement waits
for every check to have run twice).

Not a test and not run by one.
"""


def pulse_config(pg):
    """The footprint bench's config: one Postgres source (URL `pg`) and the local Redis, each
    with the checks a source gets by default."""
    return f"""sources:
  - name: db
    kind: postgres
    url: {pg}
  - name: cache
    kind: redis
    url: redis://127.0.0.1:6379
"""


def runs_per_check(text):
    """{check's labels: runs, whatever their outcome} from the `pulse_check_runs_total` series of
    a scrape's text (empty before any check has run, and for another exporter)."""
    runs = {}
    for line in text.splitlines():
        if line.startswith("pulse_check_runs_total{"):
            labels, value = line.rsplit(" ", 1)
            check = ",".join(p for p in labels.split(",") if not p.startswith("outcome="))
            runs[check] = runs.get(check, 0) + float(value)
    return runs
