//! The demo's MongoDB part: Hayon-shaped `users` documents in a database of the demo's own.

use mongodb::bson::{doc, DateTime as BsonDateTime, Document};
use mongodb::{Client, Database};
use rand::Rng;

use super::world::{Plan, World};
use super::{judge, DemoError};

/// Collections the demo creates; `_pulse_demo` marks the database as the demo's.
pub const COLLECTIONS: [&str; 2] = ["_pulse_demo", "users"];

/// Post and caption limits per plan, as Hayon's PLAN_LIMITS would set them.
pub const LIMITS: [(&str, i64, i64); 2] = [("free", 30, 50), ("pro", 500, 1_000)];

/// A connected MongoDB target.
pub struct Target {
    db: Database,
}

impl Target {
    /// Connects (lazily, as the driver does); nothing is written yet.
    pub async fn connect(url: &str, database: &str) -> Result<Target, DemoError> {
        if database.is_empty() || database.contains(['/', '.', ' ', '$']) {
            return Err(DemoError::usage(format!(
                "--mongodb-database {database:?} is not a valid database name"
            )));
        }
        let client = Client::with_uri_str(url)
            .await
            .map_err(|e| DemoError::target("mongodb", e))?;
        Ok(Target {
            db: client.database(database),
        })
    }

    /// Refuses a database that holds collections the demo did not make, unless `force`. An
    /// empty collection holds nothing to protect (a monitoring read may leave one behind, as
    /// `$collStats` does on some wire servers): it does not count.
    pub async fn check_safe(&self, force: bool) -> Result<(), DemoError> {
        let listed = self
            .db
            .list_collection_names()
            .await
            .map_err(|e| DemoError::target("mongodb", e))?;
        let mut names = Vec::with_capacity(listed.len());
        for name in listed {
            let count = self
                .db
                .collection::<mongodb::bson::Document>(&name)
                .estimated_document_count()
                .await
                .map_err(|e| DemoError::target("mongodb", e))?;
            if count > 0 || name == "_pulse_demo" {
                names.push(name);
            }
        }
        names.sort();
        let marked = names.iter().any(|n| n == "_pulse_demo");
        judge(
            "mongodb",
            format!("database {:?}", self.db.name()),
            &names,
            marked,
            |n| COLLECTIONS.contains(&n),
            force,
            "--mongodb-database",
        )
    }

    /// `demo --clean`: drops the demo's collections, marker last. Without the marker nothing
    /// is dropped.
    pub async fn clean(&self) -> Result<String, DemoError> {
        let names = self
            .db
            .list_collection_names()
            .await
            .map_err(|e| DemoError::target("mongodb", e))?;
        let db = self.db.name();
        if !names.iter().any(|n| n == "_pulse_demo") {
            return Ok(format!(
                "mongodb: database {db:?} has no demo marker; nothing dropped"
            ));
        }
        let mut dropped = 0;
        for c in COLLECTIONS.iter().rev() {
            if names.iter().any(|n| n == c) {
                self.db
                    .collection::<Document>(c)
                    .drop()
                    .await
                    .map_err(|e| DemoError::target("mongodb", e))?;
                dropped += 1;
            }
        }
        Ok(format!(
            "mongodb: dropped {dropped} demo collections of {db:?}"
        ))
    }

    /// Drops the demo's collections and writes one document per user.
    pub async fn seed(&self, world: &World) -> Result<(), DemoError> {
        // The marker goes last, so the demo's names are never left without it.
        for c in COLLECTIONS.iter().rev() {
            self.db
                .collection::<Document>(c)
                .drop()
                .await
                .map_err(|e| DemoError::target("mongodb", e))?;
        }
        self.db
            .collection::<Document>("_pulse_demo")
            .insert_one(doc! {"note": "made by pulse-exporter demo; safe to drop"})
            .await
            .map_err(|e| DemoError::target("mongodb", e))?;
        // Events are in time order: the last one seen per user is their last activity.
        let mut last: Vec<Option<chrono::DateTime<chrono::Utc>>> = vec![None; world.users.len()];
        for e in &world.events {
            last[e.user] = Some(e.at);
        }
        let docs: Vec<Document> = world
            .users
            .iter()
            .enumerate()
            .map(|(i, u)| user_doc(i, u, last[i].unwrap_or(u.created_at)))
            .collect();
        for chunk in docs.chunks(500) {
            self.db
                .collection::<Document>("users")
                .insert_many(chunk.to_vec())
                .await
                .map_err(|e| DemoError::target("mongodb", e))?;
        }
        Ok(())
    }

    /// Live activity: a few users create posts or captions; now and then someone signs up,
    /// unless signups are `paused` (the `control:signups` key).
    pub async fn tick(
        &self,
        world: &mut World,
        signups: &mut usize,
        paused: bool,
    ) -> Result<(), DemoError> {
        let users = self.db.collection::<Document>("users");
        let n = world.users.len();
        let rng = world.rng();
        for _ in 0..3 {
            let id = format!("u{:05}", rng.random_range(0..n));
            let field = if rng.random_bool(0.5) {
                "usage.postsCreated"
            } else {
                "usage.captionGenerations"
            };
            users
                .update_one(doc! {"_id": id}, doc! {"$inc": {field: 1}})
                .await
                .map_err(|e| DemoError::target("mongodb", e))?;
        }
        if !paused && rng.random_bool(0.02) {
            *signups += 1;
            let now = BsonDateTime::now();
            users
                .insert_one(doc! {
                    "_id": format!("live{:05}", *signups),
                    "email": format!("live{:05}@demo.invalid", *signups),
                    "name": format!("Live user {}", *signups),
                    "isDisabled": false,
                    "plan": "free",
                    "subscription": {"status": "none"},
                    "usage": {"postsCreated": 0, "captionGenerations": 0},
                    "limits": {"maxPosts": LIMITS[0].1, "maxCaptionGenerations": LIMITS[0].2},
                    "createdAt": now,
                    "lastLoginAt": now,
                })
                .await
                .map_err(|e| DemoError::target("mongodb", e))?;
        }
        Ok(())
    }
}

fn user_doc(
    i: usize,
    u: &super::world::User,
    last_login: chrono::DateTime<chrono::Utc>,
) -> Document {
    // Hayon has two plans: a trial is a free account with a Stripe trial running.
    let (plan, status) = match u.plan {
        Plan::Pro => ("pro", "active"),
        Plan::Trial => ("free", "trialing"),
        Plan::Free if i.is_multiple_of(7) => ("free", "canceled"),
        Plan::Free => ("free", "none"),
    };
    let (_, max_posts, max_captions) = LIMITS
        .iter()
        .find(|(p, _, _)| *p == plan)
        .copied()
        .unwrap_or(LIMITS[0]);
    // Usage grows with engagement; a handful of users sit at or near their limit.
    let share = (u.engagement * 1.15).min(1.0);
    let posts = (max_posts as f64 * share * ((i % 13) as f64 / 12.0)).round() as i64;
    let captions = (max_captions as f64 * share * ((i % 11) as f64 / 10.0)).round() as i64;
    doc! {
        "_id": &u.id,
        "email": &u.email,
        "name": &u.username,
        "isDisabled": u.disabled,
        "plan": plan,
        "subscription": {"status": status},
        "usage": {"postsCreated": posts, "captionGenerations": captions},
        "limits": {"maxPosts": max_posts, "maxCaptionGenerations": max_captions},
        "createdAt": BsonDateTime::from_millis(u.created_at.timestamp_millis()),
        "lastLoginAt": BsonDateTime::from_millis(last_login.timestamp_millis()),
    }
}
