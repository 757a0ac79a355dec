//! `pulse-exporter demo`: makes the data the example configs read, in the local services.
//!
//! It writes a month of history for a made-up platform (users on free, pro and trial plans;
//! logins, AI requests, preview builds, live-view joins and JOIP feature events), the current
//! state (open WebSocket sessions, queued jobs, worker heartbeats, a scheduled-posts backlog and
//! its dead letters), then keeps generating live activity until stopped, or exits with
//! `--once`.
//!
//! It is safe by construction: it writes only in its own Postgres schema, MongoDB database,
//! Redis key prefix and RabbitMQ queue names, and refuses any of them that already holds
//! something it did not make (a marker it writes says what it made) unless `--force`.

mod logs;
mod mongo;
mod postgres;
mod rabbit;
mod redis_data;
pub mod world;

use std::fmt;
use std::time::Duration;

use chrono::Utc;

use world::World;

/// The services the demo writes to.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Users, subscriptions, sessions, AI and preview jobs, activity logs, roll-ups.
    Postgres,
    /// Hayon-shaped user documents.
    Mongodb,
    /// WebSocket sessions, queues and worker heartbeats.
    Redis,
    /// Scheduled posts, a worker and a dead-letter queue.
    Rabbitmq,
}

/// Options of `pulse-exporter demo`. Connection URLs with passwords are best passed through
/// the environment variables, which keeps them out of the process table, with the password as
/// a `${file:PATH}` reference, which keeps it out of the environment too.
#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Services to write to (default: all).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Service::Postgres, Service::Mongodb, Service::Redis, Service::Rabbitmq])]
    pub only: Vec<Service>,
    /// Postgres URL (needs CREATE on the database).
    #[arg(
        long,
        env = "PULSE_DEMO_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        hide_env_values = true
    )]
    pub postgres_url: String,
    /// The schema the demo owns.
    #[arg(long, env = "PULSE_DEMO_POSTGRES_SCHEMA", default_value = "pulse_demo")]
    pub postgres_schema: String,
    /// MongoDB URL.
    #[arg(
        long,
        env = "PULSE_DEMO_MONGODB_URL",
        default_value = "mongodb://127.0.0.1:27017/?serverSelectionTimeoutMS=5000",
        hide_env_values = true
    )]
    pub mongodb_url: String,
    /// The MongoDB database the demo owns.
    #[arg(
        long,
        env = "PULSE_DEMO_MONGODB_DATABASE",
        default_value = "pulse_demo"
    )]
    pub mongodb_database: String,
    /// Redis URL.
    #[arg(
        long,
        env = "PULSE_DEMO_REDIS_URL",
        default_value = "redis://127.0.0.1:6379/0",
        hide_env_values = true
    )]
    pub redis_url: String,
    /// Prefix of every Redis key the demo writes.
    #[arg(long, env = "PULSE_DEMO_REDIS_PREFIX", default_value = "pulse_demo:")]
    pub redis_prefix: String,
    /// AMQP URL.
    #[arg(
        long,
        env = "PULSE_DEMO_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true
    )]
    pub amqp_url: String,
    /// Prefix of the RabbitMQ queues the demo declares.
    #[arg(long, env = "PULSE_DEMO_AMQP_PREFIX", default_value = "pulse_demo.")]
    pub amqp_prefix: String,
    /// Directory of the JSON-lines logs the demo appends to (ai-events.log, preview.log).
    #[arg(
        long,
        env = "PULSE_DEMO_LOG_DIR",
        default_value = "/tmp/pulse-demo/logs"
    )]
    pub log_dir: std::path::PathBuf,
    /// Users to generate (the history is built in memory and written in one transaction).
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u32).range(1..=20_000))]
    pub users: u32,
    /// Days of history.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=120))]
    pub days: u32,
    /// Live events per second after the history.
    #[arg(long, default_value_t = 2.0)]
    pub rate: f64,
    /// Random seed: the same seed and clock make the same data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write the history and current state, then exit.
    #[arg(long)]
    pub once: bool,
    /// Write beside things the demo did not make. It still drops only its own tables,
    /// collections, keys and queues (proven by its marker), and never replaces an unmarked
    /// object that has one of its names.
    #[arg(long)]
    pub force: bool,
    /// Remove what the demo wrote and exit: its tables (and the schema if that empties it),
    /// collections, keys, queues and log files, each only where its marker proves it made
    /// them. Things without the marker, and anything the demo did not write, stay.
    #[arg(long, conflicts_with_all = ["once", "force"])]
    pub clean: bool,
}

/// Why the demo stopped.
#[derive(Debug)]
pub struct DemoError {
    message: String,
    /// Exit code: 2 for usage, 3 for a refused target, 1 otherwise.
    pub code: u8,
}

impl DemoError {
    fn usage(message: impl Into<String>) -> Self {
        DemoError {
            message: message.into(),
            code: 2,
        }
    }

    fn target(service: &str, e: impl fmt::Display) -> Self {
        DemoError {
            message: format!(
                "{service}: {}",
                pulse_exporter::secrets::scrub(&e.to_string())
            ),
            code: 1,
        }
    }
}

impl fmt::Display for DemoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Decides whether the demo may write to a target holding `found` (table, collection, key or
/// queue names); `own` tells the demo's own names and `marked` whether its marker is there.
/// Things named like the demo's own but unmarked are never replaced, even with `force`;
/// other things are written beside only with `force`. At most five names are quoted.
fn judge(
    service: &str,
    target: String,
    found: &[String],
    marked: bool,
    own: impl Fn(&str) -> bool,
    force: bool,
    flag: &str,
) -> Result<(), DemoError> {
    let quote = |names: Vec<&String>| {
        let more = names.len().saturating_sub(5);
        let mut list: Vec<&str> = names.iter().take(5).map(|s| s.as_str()).collect();
        let tail = format!("and {more} more");
        if more > 0 {
            list.push(&tail);
        }
        list.join(", ")
    };
    let clashes: Vec<&String> = found.iter().filter(|n| !marked && own(n)).collect();
    if !clashes.is_empty() {
        return Err(DemoError {
            message: format!(
                "{service}: refusing to write to {target}: it holds {} named like the demo's own \
                 but without its marker, and the demo never replaces what it did not create \
                 (not even with --force); choose another target with {flag}",
                quote(clashes)
            ),
            code: 3,
        });
    }
    let foreign: Vec<&String> = found.iter().filter(|n| !own(n)).collect();
    if foreign.is_empty() || force {
        return Ok(());
    }
    Err(DemoError {
        message: format!(
            "{service}: refusing to write to {target}: it holds {} that the demo did not create; \
             choose an empty target with {flag}, or pass --force to write beside them",
            quote(foreign)
        ),
        code: 3,
    })
}

/// Runs the demo until SIGINT/SIGTERM, or once with `--once`.
pub async fn run(mut args: DemoArgs) -> Result<(), DemoError> {
    if !(args.rate.is_finite() && (0.0..=1_000.0).contains(&args.rate)) {
        return Err(DemoError::usage(
            "--rate must be between 0 and 1000 events per second",
        ));
    }
    // A URL may carry its password as `${file:PATH}` (a container secret), so the password is
    // in neither the environment nor the process table.
    for (flag, url) in [
        ("--postgres-url", &mut args.postgres_url),
        ("--mongodb-url", &mut args.mongodb_url),
        ("--redis-url", &mut args.redis_url),
        ("--amqp-url", &mut args.amqp_url),
    ] {
        *url = pulse_exporter::config_core::expand_files(url)
            .map_err(|e| DemoError::usage(format!("{flag}: {e}")))?;
        pulse_exporter::secrets::register_url_password(url);
    }
    let on = |s: Service| args.only.contains(&s);
    // A service that cannot be reached stops the run before anything is written; say how to
    // leave it out.
    let others = |skip: Service| {
        let rest: Vec<String> = args
            .only
            .iter()
            .filter(|s| **s != skip)
            .map(|s| format!("{s:?}").to_lowercase())
            .collect();
        rest.join(",")
    };
    let hint = |skip: Service| {
        let rest = others(skip);
        move |mut e: DemoError| {
            if e.code == 1 {
                e.message = format!(
                    "{} (is it running? leave it out with --only {rest})",
                    e.message
                );
            }
            e
        }
    };
    // Connect to and check every target before writing to any.
    let pg = match on(Service::Postgres) {
        true => Some(
            postgres::Target::connect(&args.postgres_url, &args.postgres_schema)
                .await
                .map_err(hint(Service::Postgres))?,
        ),
        false => None,
    };
    let mongo = match on(Service::Mongodb) {
        true => Some(
            mongo::Target::connect(&args.mongodb_url, &args.mongodb_database)
                .await
                .map_err(hint(Service::Mongodb))?,
        ),
        false => None,
    };
    let redis = match on(Service::Redis) {
        true => Some(
            redis_data::Target::connect(&args.redis_url, &args.redis_prefix)
                .await
                .map_err(hint(Service::Redis))?,
        ),
        false => None,
    };
    let mut rabbit = match on(Service::Rabbitmq) {
        true => Some(
            rabbit::Target::connect(&args.amqp_url, &args.amqp_prefix)
                .await
                .map_err(hint(Service::Rabbitmq))?,
        ),
        false => None,
    };
    if args.clean {
        let mut done = Vec::new();
        if let Some(t) = &pg {
            done.push(t.clean().await?);
        }
        if let Some(t) = &mongo {
            done.push(t.clean().await?);
        }
        if let Some(t) = &redis {
            done.push(t.clean().await?);
        }
        if let Some(t) = &rabbit {
            done.push(t.clean().await?);
        }
        done.push(logs::clean(&args.log_dir)?);
        for line in done {
            tracing::info!("{line}");
        }
        return Ok(());
    }
    if let Some(t) = &pg {
        t.check_safe(args.force)
            .await
            .map_err(hint(Service::Postgres))?;
    }
    if let Some(t) = &mongo {
        t.check_safe(args.force)
            .await
            .map_err(hint(Service::Mongodb))?;
    }
    if let Some(t) = &redis {
        t.check_safe(args.force)
            .await
            .map_err(hint(Service::Redis))?;
    }
    if let Some(t) = &rabbit {
        t.check_safe(args.force)
            .await
            .map_err(hint(Service::Rabbitmq))?;
    }

    let mut world = World::generate(args.seed, args.users as usize, args.days, Utc::now());
    tracing::info!(
        users = world.users.len(),
        events = world.events.len(),
        online_sessions = world.online.len(),
        "generated the demo history"
    );
    if let Some(t) = &pg {
        t.seed(&world).await?;
        tracing::info!(schema = %args.postgres_schema, "postgres: demo schema written");
    }
    if let Some(t) = &mongo {
        t.seed(&world).await?;
        tracing::info!(database = %args.mongodb_database, "mongodb: demo users written");
    }
    if let Some(t) = &redis {
        t.seed(&world).await?;
        tracing::info!(prefix = %args.redis_prefix, "redis: sessions, queues and heartbeats written");
    }
    if let Some(t) = &mut rabbit {
        t.seed(60).await?;
        tracing::info!(queue = %t.queue, dlq = %t.dlq, "rabbitmq: scheduled posts and dead letters written");
    }
    // The files exist from the start, so log sources can follow them from their end.
    let mut logs = logs::Logs::open(&args.log_dir)?;
    if args.once {
        return Ok(());
    }

    tracing::info!(
        rate = args.rate,
        "generating live activity; stop with Ctrl-C"
    );
    let mut live = postgres::Live {
        rate: args.rate,
        ..postgres::Live::default()
    };
    let mut signups = 0usize;
    let mut posts = 1_000usize;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut stop = std::pin::pin!(shutdown());
    let mut second: u64 = 0;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        second += 1;
        // The spot GPU worker is away 2 minutes in every 10; the posts worker stops for one
        // minute in every 7 (then its queue grows with no consumer).
        let gpu_offline = second % 600 >= 480;
        let worker_down = second % 420 >= 360;
        live.new_ai.clear();
        live.new_preview.clear();
        live.ai_lines.clear();
        live.preview_lines.clear();
        let controls = match &redis {
            Some(t) => t.controls().await,
            None => redis_data::Controls::default(),
        };
        live.ai_paused = controls.ai_paused;
        live.signups_paused = controls.signups_paused;
        let result = async {
            if let Some(t) = &pg {
                if second.is_multiple_of(3_600) {
                    t.rollup().await?;
                }
                t.tick(&mut live, &mut world).await?;
                for (user, status, latency, tokens) in &live.ai_lines {
                    logs.ai(user, status, *latency, *tokens)?;
                }
                for (user, status, latency) in &live.preview_lines {
                    logs.preview(user, status, *latency)?;
                }
            }
            if let Some(t) = &redis {
                t.tick(
                    &mut world,
                    &live.new_ai,
                    &live.new_preview,
                    gpu_offline,
                    controls.ai_paused,
                )
                .await?;
                t.beat(Utc::now().timestamp(), gpu_offline, controls.gpu_workers)
                    .await?;
            }
            if let Some(t) = &mongo {
                t.tick(&mut world, &mut signups, controls.signups_paused)
                    .await?;
            }
            if let Some(t) = &mut rabbit {
                match (worker_down, t.worker_running()) {
                    (true, true) => t.stop_worker().await,
                    (false, false) => t.start_worker().await?,
                    _ => {}
                }
                t.tick(world.rng(), &mut posts).await?;
            }
            Ok::<(), DemoError>(())
        }
        .await;
        // A service going away mid-run is part of what the exporter should show: keep going.
        if let Err(e) = result {
            tracing::warn!(error = %e, "demo tick failed; retrying next second");
        }
    }
    if let Some(t) = &mut rabbit {
        t.stop_worker().await;
    }
    tracing::info!("demo stopped");
    Ok(())
}

async fn shutdown() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
