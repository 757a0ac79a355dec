//! The demo's made-up platform: users, their plans and a month of activity, generated from a
//! seed so two runs with the same seed and clock make the same data.
//!
//! Every event time of the history keeps [`MARGIN`] away from the window edges the example
//! configs use (1 h, 24 h, 7 d, 30 d), so a number computed a few minutes after seeding is the
//! same whichever side of a scrape it is computed on.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Distance every generated time keeps from a window edge and from a trial's end.
pub const MARGIN: Duration = Duration::from_secs(20 * 60);

/// Window edges (in seconds before now) that history times keep away from.
const EDGES: [i64; 4] = [3_600, 86_400, 7 * 86_400, 30 * 86_400];

/// Device types of WebSocket sessions, as the HiveSync spec lists them.
pub const DEVICES: [&str; 4] = ["desktop", "ipad", "phone", "unknown"];

/// Outcome of an AI request, with the share of requests that end that way.
pub const AI_STATUSES: [(&str, f64); 4] = [
    ("ok", 0.93),
    ("provider_error", 0.035),
    ("timeout", 0.025),
    ("safety_rejection", 0.01),
];

/// JOIP tracked events: (action, feature), every event of the JOIP activity list.
pub const FEATURE_ACTIONS: [(&str, &str); 25] = [
    ("session_created", "sessions"),
    ("session_viewed", "sessions"),
    ("session_edited", "sessions"),
    ("session_deleted", "sessions"),
    ("session_shared", "sessions"),
    ("session_favorited", "sessions"),
    ("session_refreshed", "sessions"),
    ("smart_caption_generated", "smart_captions"),
    ("custom_caption_created", "smart_captions"),
    ("caption_regenerated", "smart_captions"),
    ("theme_selected", "smart_captions"),
    ("babecock_created", "babecock_studio"),
    ("babecock_remix", "babecock_studio"),
    ("layout_detected", "babecock_studio"),
    ("media_uploaded", "media_gallery"),
    ("media_deleted", "media_gallery"),
    ("media_shared", "media_gallery"),
    ("media_downloaded", "media_gallery"),
    ("bulk_download", "media_gallery"),
    ("analytics_viewed", "admin"),
    ("user_updated", "admin"),
    ("user_role_updated", "admin"),
    ("user_deleted", "admin"),
    ("settings_updated", "admin"),
    ("audit_logs_viewed", "admin"),
];

/// A user's plan as stored in `users.plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The free tier.
    Free,
    /// The paid tier.
    Pro,
    /// A trial; expired once `trial_ends_at` has passed without an upgrade.
    Trial,
}

impl Plan {
    /// The value stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Pro => "pro",
            Plan::Trial => "trial",
        }
    }
}

/// One generated user.
#[derive(Debug, Clone)]
pub struct User {
    /// `u00042`.
    pub id: String,
    /// `user00042`.
    pub username: String,
    /// An address under the reserved `.invalid` domain: it can never reach anyone.
    pub email: String,
    /// Current plan.
    pub plan: Plan,
    /// When a trial ends (trial users only).
    pub trial_ends_at: Option<DateTime<Utc>>,
    /// Deactivated by an admin.
    pub disabled: bool,
    /// Signup time.
    pub created_at: DateTime<Utc>,
    /// Chance of being active on a given day.
    pub engagement: f64,
    /// Mean AI requests on an active day.
    pub ai_per_day: f64,
}

/// What one user did at one time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// A login (user_activity_logs, action `login`).
    Login,
    /// A live-view join (user_activity_logs, action `live_view_joined`).
    LiveView,
    /// An AI request with its outcome, latency and tokens.
    Ai {
        /// Index into [`AI_STATUSES`].
        status: usize,
        /// Milliseconds from created to completed.
        latency_ms: i64,
        /// Prompt plus completion tokens.
        tokens: i32,
    },
    /// A preview build, and whether it failed.
    Preview {
        /// Milliseconds from created to completed.
        latency_ms: i64,
        /// The build failed.
        failed: bool,
    },
    /// A JOIP feature event (index into [`FEATURE_ACTIONS`]).
    Feature(usize),
}

/// One event of the history.
#[derive(Debug, Clone)]
pub struct Event {
    /// Index into [`World::users`].
    pub user: usize,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    pub what: Activity,
}

/// The whole generated platform.
pub struct World {
    /// Every user.
    pub users: Vec<User>,
    /// The history, oldest first.
    pub events: Vec<Event>,
    /// Users with an open WebSocket session now: (user, device index).
    pub online: Vec<(usize, usize)>,
    /// The clock the history was generated against.
    pub now: DateTime<Utc>,
    rng: StdRng,
}

impl World {
    /// Generates `users` users and `days` days of history ending at `now`.
    pub fn generate(seed: u64, users: usize, days: u32, now: DateTime<Utc>) -> World {
        let mut rng = StdRng::seed_from_u64(seed);
        let days = i64::from(days.max(1));
        let mut list = Vec::with_capacity(users);
        for i in 0..users {
            let roll: f64 = rng.random();
            let plan = if roll < 0.6 {
                Plan::Free
            } else if roll < 0.85 {
                Plan::Pro
            } else {
                Plan::Trial
            };
            // Signups over 90 days, more of them recently: the platform grows.
            let age_days = 90.0 * rng.random::<f64>().powf(1.5);
            let created_at = safe_time(now, (age_days * 86_400.0) as i64 + 3_600, &mut rng);
            let trial_ends_at = (plan == Plan::Trial).then(|| {
                // Half the trials already ended (and were not upgraded: the plan is still trial).
                let secs = rng.random_range(MARGIN.as_secs() as i64..14 * 86_400);
                if rng.random_bool(0.5) {
                    now - TimeDelta::seconds(secs)
                } else {
                    now + TimeDelta::seconds(secs)
                }
            });
            // A few heavy users, many light ones: a long tail, so the top 20 and p90 mean
            // something.
            let heavy = rng.random::<f64>().powi(3);
            list.push(User {
                id: format!("u{i:05}"),
                username: format!("user{i:05}"),
                email: format!("user{i:05}@demo.invalid"),
                plan,
                trial_ends_at,
                disabled: rng.random_bool(0.05),
                created_at,
                engagement: 0.05 + 0.8 * rng.random::<f64>(),
                ai_per_day: 1.0 + 40.0 * heavy,
            });
        }
        let mut events = Vec::new();
        for (u, user) in list.iter().enumerate() {
            if user.disabled {
                continue;
            }
            for day in 0..days {
                let day_start = day * 86_400;
                if user.created_at > now - TimeDelta::seconds(day_start) {
                    continue;
                }
                if !rng.random_bool(user.engagement) {
                    continue;
                }
                let at =
                    |rng: &mut StdRng| safe_time(now, day_start + rng.random_range(0..86_400), rng);
                events.push(Event {
                    user: u,
                    at: at(&mut rng),
                    what: Activity::Login,
                });
                let ai = (user.ai_per_day * rng.random_range(0.3..1.7)) as usize;
                for _ in 0..ai {
                    let what = ai_request(&mut rng);
                    events.push(Event {
                        user: u,
                        at: at(&mut rng),
                        what,
                    });
                }
                for _ in 0..rng.random_range(0..4) {
                    let what = Activity::Preview {
                        latency_ms: rng.random_range(800..9_000),
                        failed: rng.random_bool(0.04),
                    };
                    events.push(Event {
                        user: u,
                        at: at(&mut rng),
                        what,
                    });
                }
                if rng.random_bool(0.3) {
                    events.push(Event {
                        user: u,
                        at: at(&mut rng),
                        what: Activity::LiveView,
                    });
                }
                for _ in 0..rng.random_range(0..5) {
                    let what = Activity::Feature(rng.random_range(0..FEATURE_ACTIONS.len()));
                    events.push(Event {
                        user: u,
                        at: at(&mut rng),
                        what,
                    });
                }
            }
        }
        events.sort_by_key(|e| e.at);
        let mut online = Vec::new();
        for (u, user) in list.iter().enumerate() {
            if !user.disabled && rng.random_bool(user.engagement * 0.15) {
                // Some users are online on two devices.
                let sessions = if rng.random_bool(0.2) { 2 } else { 1 };
                for _ in 0..sessions {
                    online.push((u, device(&mut rng)));
                }
            }
        }
        World {
            users: list,
            events,
            online,
            now,
            rng,
        }
    }

    /// The generator's random source, for live activity after the history.
    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }
}

/// A random AI request outcome.
pub fn ai_request(rng: &mut StdRng) -> Activity {
    let roll: f64 = rng.random();
    let mut acc = 0.0;
    let mut status = 0;
    for (i, (_, share)) in AI_STATUSES.iter().enumerate() {
        acc += share;
        if roll < acc {
            status = i;
            break;
        }
    }
    let latency_ms = if AI_STATUSES[status].0 == "timeout" {
        30_000
    } else {
        rng.random_range(400..12_000)
    };
    Activity::Ai {
        status,
        latency_ms,
        tokens: rng.random_range(150..4_000),
    }
}

/// A device type index, desktop most often.
pub fn device(rng: &mut StdRng) -> usize {
    match rng.random_range(0..100) {
        0..=54 => 0,
        55..=74 => 1,
        75..=94 => 2,
        _ => 3,
    }
}

/// `now - ago_secs`, moved away from every window edge by at least [`MARGIN`] and never
/// closer than 2 × MARGIN to now.
pub fn safe_time(now: DateTime<Utc>, ago_secs: i64, rng: &mut StdRng) -> DateTime<Utc> {
    let margin = MARGIN.as_secs() as i64;
    let mut ago = ago_secs.max(2 * margin);
    for edge in EDGES {
        if (ago - edge).abs() < margin {
            // Step past the edge on the side it was already on, plus jitter.
            let before = edge - margin - rng.random_range(1..300);
            // Below the 1 h edge there is no room between it and the recent margin.
            ago = if ago < edge && before >= 2 * margin {
                before
            } else {
                edge + margin + rng.random_range(1..300)
            };
        }
    }
    now - TimeDelta::seconds(ago)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_away_from_window_edges() {
        let now = Utc::now();
        let w = World::generate(7, 200, 31, now);
        assert!(!w.events.is_empty());
        let margin = MARGIN.as_secs() as i64;
        for e in &w.events {
            let ago = (now - e.at).num_seconds();
            assert!(ago >= 2 * margin, "an event {ago}s ago is too recent");
            for edge in EDGES {
                assert!(
                    (ago - edge).abs() >= margin,
                    "{ago}s is near the {edge}s edge"
                );
            }
        }
        for u in &w.users {
            if let Some(end) = u.trial_ends_at {
                assert!((end - now).num_seconds().abs() >= margin);
            }
        }
    }

    #[test]
    fn same_seed_same_world() {
        let now = Utc::now();
        let a = World::generate(3, 50, 5, now);
        let b = World::generate(3, 50, 5, now);
        assert_eq!(a.events.len(), b.events.len());
        assert_eq!(a.online, b.online);
        assert!(a.users.iter().zip(&b.users).all(|(x, y)| x.plan == y.plan));
    }
}
