//! Which queues a source reads: its vhosts, include and exclude regexes, the queues that
//! `dead_letter_pattern` names dead-letter queues, and those read over AMQP besides.

use std::collections::HashSet;

use regex::Regex;

use super::RabbitmqConfig;
use crate::sources::ConnectError;

/// Compiled queue selection.
pub(super) struct Selection {
    vhosts: Vec<String>,
    include: Vec<Regex>,
    exclude: Vec<Regex>,
    dead_letter: Option<Regex>,
    /// `(vhost, queue)` of `amqp_queues`, whose consumers the AMQP check publishes.
    over_amqp: HashSet<(String, String)>,
}

impl Selection {
    pub(super) fn new(c: &RabbitmqConfig) -> Result<Self, ConnectError> {
        let compile = |field: &str, list: &[String]| {
            list.iter()
                .map(|r| Regex::new(r).map_err(|e| ConnectError::field(field, e.to_string())))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Selection {
            vhosts: c.vhosts.clone(),
            include: compile("queues.include", &c.queues.include)?,
            exclude: compile("queues.exclude", &c.queues.exclude)?,
            dead_letter: c
                .dead_letter_pattern
                .as_deref()
                .map(Regex::new)
                .transpose()
                .map_err(|e| ConnectError::field("dead_letter_pattern", e.to_string()))?,
            over_amqp: over_amqp(c),
        })
    }

    /// Whether the AMQP check reads `queue` of `vhost` too: its consumers come from there
    /// (the passive declare counts them whatever the broker's statistics), and the queue check
    /// leaves them out rather than publish the same series twice.
    pub(super) fn read_over_amqp(&self, vhost: &str, queue: &str) -> bool {
        self.over_amqp
            .contains(&(vhost.to_owned(), queue.to_owned()))
    }

    pub(super) fn wants(&self, vhost: &str, queue: &str) -> bool {
        (self.vhosts.is_empty() || self.vhosts.iter().any(|v| v == vhost))
            && (self.include.is_empty() || self.include.iter().any(|r| r.is_match(queue)))
            && !self.exclude.iter().any(|r| r.is_match(queue))
    }

    pub(super) fn named_dead_letter(&self, queue: &str) -> bool {
        self.dead_letter.as_ref().is_some_and(|r| r.is_match(queue))
    }
}

/// The `(vhost, queue)` pairs of `amqp_queues` in the vhost of `amqp_url`.
fn over_amqp(c: &RabbitmqConfig) -> HashSet<(String, String)> {
    let Some(uri) = c
        .amqp_url
        .as_deref()
        .and_then(|u| u.parse::<lapin::uri::AMQPUri>().ok())
    else {
        return HashSet::new();
    };
    c.amqp_queues
        .iter()
        .map(|q| (uri.vhost.clone(), q.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_are_selected_by_vhost_include_and_exclude() {
        let config: RabbitmqConfig = serde_yaml::from_str(
            "{ management_url: 'http://r:15672', vhosts: [prod], queues: { include: ['^ai\\.', '^preview'], exclude: ['\\.tmp$'] }, dead_letter_pattern: '\\.dlq$' }",
        )
        .unwrap();
        let s = Selection::new(&config).unwrap();
        assert!(s.wants("prod", "ai.requests"));
        assert!(s.wants("prod", "preview.jobs"));
        assert!(!s.wants("prod", "ai.requests.tmp"), "excluded");
        assert!(!s.wants("prod", "emails"), "not included");
        assert!(!s.wants("staging", "ai.requests"), "other vhost");
        assert!(s.named_dead_letter("ai.requests.dlq"));
        assert!(!s.named_dead_letter("ai.requests"));
        let all = Selection::new(&serde_yaml::from_str("{}").unwrap()).unwrap();
        assert!(all.wants("any", "queue") && !all.named_dead_letter("x.dlq"));
    }
}
