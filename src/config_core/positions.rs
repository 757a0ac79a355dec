//! Where each field of a config file is: the line and column of every mapping key and
//! sequence item, by the path the errors use (`sources[1].checks[14].labels`), built from
//! the YAML parser's marked events (serde's values keep no positions).

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Line and column (both from 1) of each path in one document.
#[derive(Debug, Default)]
pub struct Positions(HashMap<String, (usize, usize)>);

impl Positions {
    /// The positions in `text`; empty when it does not parse (the YAML error says where).
    pub fn of(text: &str) -> Positions {
        let mut walk = Walk::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut walk, false).is_err() {
            return Positions::default();
        }
        Positions(walk.found)
    }

    /// The position of `path`, or of its nearest ancestor that has one (a field the file
    /// lacks is reported at the mapping that should hold it).
    pub fn find(&self, path: &str) -> Option<(usize, usize)> {
        let mut p = path;
        loop {
            if let Some(at) = self.0.get(p) {
                return Some(*at);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, index: usize },
}

#[derive(Default)]
struct Walk {
    stack: Vec<Frame>,
    found: HashMap<String, (usize, usize)>,
}

impl Walk {
    /// The path of the node that starts now under the innermost container.
    fn child(&self) -> String {
        match self.stack.last() {
            None => String::new(),
            Some(Frame::Map { path, key }) => {
                let key = key.as_deref().unwrap_or_default();
                if path.is_empty() {
                    key.to_owned()
                } else {
                    format!("{path}.{key}")
                }
            }
            Some(Frame::Seq { path, index }) => format!("{path}[{index}]"),
        }
    }

    /// A value node ended: its mapping waits for the next key, its sequence for the next item.
    fn value_done(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Map { key, .. }) => *key = None,
            Some(Frame::Seq { index, .. }) => *index += 1,
            None => {}
        }
    }

    fn mark(&mut self, path: String, m: Marker) {
        // yaml-rust2 counts lines from 1 and columns from 0.
        self.found.entry(path).or_insert((m.line(), m.col() + 1));
    }
}

impl MarkedEventReceiver for Walk {
    fn on_event(&mut self, ev: Event, m: Marker) {
        let awaiting_key = matches!(self.stack.last(), Some(Frame::Map { key: None, .. }));
        match ev {
            Event::Scalar(text, ..) if awaiting_key => {
                if let Some(Frame::Map { key, path }) = self.stack.last_mut() {
                    *key = Some(text.to_string());
                    // A block mapping's start event sits at its first `:`; its first key is
                    // where a reader looks for it.
                    let map = path.clone();
                    self.mark(map, m);
                }
                let path = self.child();
                self.mark(path, m);
            }
            Event::Scalar(..) | Event::Alias(_) => {
                let path = self.child();
                self.mark(path, m);
                self.value_done();
            }
            Event::MappingStart(..) => {
                let path = self.child();
                self.stack.push(Frame::Map { path, key: None });
            }
            Event::SequenceStart(..) => {
                let path = self.child();
                self.mark(path.clone(), m);
                self.stack.push(Frame::Seq { path, index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.value_done();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
global:
  interval: 1m
sources:
  - name: db
    kind: postgres
    checks:
      - metric: app_a
        labels: [plan, region]
      - { metric: app_b, sql: 'select 1' }
";

    #[test]
    fn keys_and_items_are_found_by_their_error_path() {
        let p = Positions::of(FILE);
        assert_eq!(p.find("global.interval"), Some((2, 3)));
        assert_eq!(p.find("sources[0]"), Some((4, 5)));
        assert_eq!(p.find("sources[0].kind"), Some((5, 5)));
        assert_eq!(p.find("sources[0].checks[0].labels"), Some((8, 9)));
        assert_eq!(p.find("sources[0].checks[0].labels[1]"), Some((8, 24)));
        assert_eq!(p.find("sources[0].checks[1].sql"), Some((9, 26)));
    }

    #[test]
    fn a_missing_field_is_placed_at_its_nearest_ancestor() {
        let p = Positions::of(FILE);
        assert_eq!(
            p.find("sources[0].checks[1].values"),
            p.find("sources[0].checks[1]")
        );
        assert_eq!(p.find("sources[0].url"), Some((4, 5)));
        assert_eq!(
            Positions::of("a: [").find("a"),
            None,
            "a file that does not parse"
        );
    }
}
