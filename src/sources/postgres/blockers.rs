//! Who blocks whom, from one sample of `pg_stat_activity`: each waiting session's blockers
//! (`pg_blocking_pids()`) make a graph, and its roots (blockers not themselves waiting on a
//! lock) are what an SRE ends. Pure: the sample in, the roots out, so that chains, cycles and
//! blockers the role cannot see are tested without a server.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// One session of a sample, as far as blocking goes.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Session {
    /// The backend's pid: a key within one sample, never a label.
    pub pid: i32,
    /// Who it waits for, when it waits on a lock.
    pub blocked_by: Vec<i32>,
    /// How long it has waited (its current statement's age), in seconds.
    pub waiting_seconds: f64,
    /// The lock mode and relation it waits for, where the server says.
    pub mode: Option<String>,
    pub relation: Option<String>,
    /// What names it as a blocker: a stable identity, no pid.
    pub identity: Identity,
}

/// A blocker's stable identity: where and who, and what it runs. Sessions that share it are
/// one series.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Identity {
    pub database: String,
    pub user: String,
    pub application: String,
    /// `active`, `idle in transaction`, …
    pub state: String,
    /// The statement's id (Postgres 14+ with `compute_query_id`), else empty.
    pub queryid: String,
}

/// A root blocker and what waits behind it, sessions of the same identity summed.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Root {
    pub identity: Identity,
    /// Sessions waiting on it directly.
    pub direct: usize,
    /// Sessions waiting on it directly or through another waiting session.
    pub behind: usize,
    /// The longest wait among them, in seconds.
    pub longest_wait: f64,
    /// The lock mode and relation its first direct waiter waits for.
    pub mode: String,
    pub relation: String,
}

/// The root blockers of a sample, the most sessions behind first. A blocker that is itself
/// waiting on a lock is no root; in a cycle (a deadlock the server has not broken yet) every
/// member waits, so the members of a cycle with no other root are each a root. A blocker the
/// sample does not hold (another database's session a role may not see, or one that ended)
/// is a root with an unknown identity.
pub(super) fn roots(sessions: &[Session]) -> Vec<Root> {
    let by_pid: HashMap<i32, &Session> = sessions.iter().map(|s| (s.pid, s)).collect();
    // Who waits on whom, the other way round.
    let mut waiters: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for s in sessions {
        for b in &s.blocked_by {
            waiters.entry(*b).or_default().push(s.pid);
        }
    }
    let waiting = |pid: i32| by_pid.get(&pid).is_some_and(|s| !s.blocked_by.is_empty());
    let mut root_pids: Vec<i32> = waiters.keys().copied().filter(|p| !waiting(*p)).collect();
    // Sessions in a cycle reach no root: each member of such a cycle counts as one.
    let reached: HashSet<i32> = root_pids
        .iter()
        .flat_map(|r| behind(*r, &waiters))
        .collect();
    for pid in waiters.keys() {
        if !root_pids.contains(pid) && !reached.contains(pid) {
            root_pids.push(*pid);
        }
    }
    let mut out: HashMap<Identity, Root> = HashMap::new();
    for pid in root_pids {
        let all = behind(pid, &waiters);
        let direct = &waiters[&pid];
        let first = direct.iter().find_map(|w| by_pid.get(w));
        let identity = by_pid
            .get(&pid)
            .map(|s| s.identity.clone())
            .unwrap_or_else(|| Identity {
                state: "unknown".to_owned(),
                ..Identity::default()
            });
        let longest = all
            .iter()
            .filter_map(|w| by_pid.get(w))
            .map(|w| w.waiting_seconds)
            .fold(0.0, f64::max);
        let root = Root {
            identity: identity.clone(),
            direct: direct.len(),
            behind: all.len(),
            longest_wait: longest,
            mode: first.and_then(|w| w.mode.clone()).unwrap_or_default(),
            relation: first.and_then(|w| w.relation.clone()).unwrap_or_default(),
        };
        out.entry(identity)
            .and_modify(|r| {
                r.direct += root.direct;
                r.behind += root.behind;
                r.longest_wait = r.longest_wait.max(root.longest_wait);
            })
            .or_insert(root);
    }
    let mut roots: Vec<Root> = out.into_values().collect();
    roots.sort_by(|a, b| {
        b.behind
            .cmp(&a.behind)
            .then_with(|| a.identity.cmp(&b.identity))
    });
    roots
}

/// Every session waiting on `root`, directly or through others, each once (a cycle ends the
/// walk), `root` itself excluded.
fn behind(root: i32, waiters: &BTreeMap<i32, Vec<i32>>) -> Vec<i32> {
    let mut seen = HashSet::from([root]);
    let mut out = Vec::new();
    let mut queue = VecDeque::from([root]);
    while let Some(p) = queue.pop_front() {
        for w in waiters.get(&p).into_iter().flatten() {
            if seen.insert(*w) {
                out.push(*w);
                queue.push_back(*w);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(pid: i32, blocked_by: &[i32], app: &str, state: &str) -> Session {
        Session {
            pid,
            blocked_by: blocked_by.to_vec(),
            waiting_seconds: f64::from(pid),
            mode: (!blocked_by.is_empty()).then(|| "AccessShareLock".to_owned()),
            relation: (!blocked_by.is_empty()).then(|| "orders".to_owned()),
            identity: Identity {
                database: "app".into(),
                user: "app".into(),
                application: app.into(),
                state: state.into(),
                queryid: String::new(),
            },
        }
    }

    /// A chain (A blocks B, B blocks C) has one root, A, with two behind it, one directly.
    #[test]
    fn a_chain_has_one_root_with_everyone_behind_it() {
        let r = roots(&[
            session(1, &[], "migrate", "idle in transaction"),
            session(2, &[1], "web", "active"),
            session(3, &[2], "web", "active"),
        ]);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].identity.application, "migrate");
        assert_eq!((r[0].direct, r[0].behind), (1, 2));
        assert_eq!(r[0].longest_wait, 3.0);
        assert_eq!(
            (r[0].mode.as_str(), r[0].relation.as_str()),
            ("AccessShareLock", "orders")
        );
    }

    /// Two sessions of one identity blocking are one series, their waiters summed; a blocker
    /// the sample does not hold is a root of unknown identity; nothing waits, no root.
    #[test]
    fn roots_of_one_identity_add_up_and_unseen_blockers_count() {
        let r = roots(&[
            session(1, &[], "batch", "active"),
            session(2, &[], "batch", "active"),
            session(3, &[1], "web", "active"),
            session(4, &[2], "web", "active"),
            session(5, &[99], "web", "active"),
        ]);
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(
            (r[0].identity.application.as_str(), r[0].behind),
            ("batch", 2)
        );
        assert_eq!((r[1].identity.state.as_str(), r[1].behind), ("unknown", 1));
        assert!(roots(&[session(1, &[], "web", "active")]).is_empty());
    }

    /// A cycle with no root outside it (a deadlock before the server breaks it) still shows.
    #[test]
    fn a_cycle_is_not_lost() {
        let r = roots(&[
            session(1, &[2], "a", "active"),
            session(2, &[1], "b", "active"),
        ]);
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(r.iter().all(|r| r.behind == 1));
    }
}
