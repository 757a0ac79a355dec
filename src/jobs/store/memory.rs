//! The job store of one process: states in its memory, lost at a restart and seen by no other
//! replica (the default, and what tests run against).

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::jobs::state::JobState;
use crate::sync::MutexExt;

/// States by job name, behind one lock: every operation is one step under it, so an update
/// is atomic without compare-and-set.
#[derive(Debug, Default)]
pub struct MemoryStore(Mutex<BTreeMap<String, JobState>>);

impl MemoryStore {
    /// See [`super::Store::update`].
    pub fn update<R>(
        &self,
        name: &str,
        now: f64,
        cap: Option<(&str, u32)>,
        step: impl FnOnce(&mut JobState) -> R,
    ) -> Option<(JobState, R)> {
        let mut map = self.0.locked();
        if let Some((key, max)) = cap {
            let made = map
                .values()
                .filter(|s| s.key.as_deref() == Some(key))
                .count();
            if !map.contains_key(name) && made >= max as usize {
                return None;
            }
        }
        let state = map
            .entry(name.to_owned())
            .or_insert_with(|| JobState::new(now));
        let r = step(state);
        Some((state.clone(), r))
    }

    /// Every job's state.
    pub fn load(&self) -> BTreeMap<String, JobState> {
        self.0.locked().clone()
    }

    /// See [`super::Store::put_missing`].
    pub fn put_missing(&self, states: &[(String, JobState)]) {
        let mut map = self.0.locked();
        for (n, state) in states {
            map.entry(n.clone()).or_insert_with(|| state.clone());
        }
    }

    /// Deletes job `name`'s state.
    pub fn forget(&self, name: &str) {
        self.0.locked().remove(name);
    }
}
