//! Turning labels received from peers into `Label(&'static str)`.
//!
//! `offer` must return a `&'static str`, but the text comes off the wire.
//! Labels live in one process-wide table:
//!
//! - labels the application *registers* ([`register_labels`]), and the
//!   labels of every protocol attached to an endpoint, never count against
//!   any limit;
//! - a label a peer sends that is not in the table is *learned*: copied once,
//!   then reused forever. Learning is capped three times: each session may
//!   teach at most [`MAX_LABELS_PER_SESSION`] labels; each *peer* may teach
//!   at most as many, over all its sessions, where the transport tells who
//!   the peer is (`RumpsteakSession::peer_identity`: the key of the
//!   certificate a TLS peer proved, or the address a plain-text peer
//!   connected from, its IPv6 /64 for IPv6, shared by peers behind one NAT);
//!   and the
//!   process keeps at most [`MAX_INTERNED_LABELS`] learned labels in all.
//!
//! So one session, or one peer however many sessions it opens, can take at
//! most 64 of the 1024 places. What remains: enough *different* peers (16
//! hostile certificate keys, or connections from 16 addresses) can still fill
//! the table, after which an `offer` of a label that was neither registered
//! nor part of an attached protocol fails with `TooManyLabels`. Labels the
//! application registered, and those of attached protocols, are never
//! affected, and `offer_among` needs no table.
//!
//! So receiving the same label a million times costs nothing more than
//! receiving it once, a hostile peer cannot grow our memory without bound,
//! and it cannot lock other sessions out of the labels the application
//! registered. `offer_among` needs no table at all.
//!
//! Each session also remembers the last few labels it resolved
//! ([`SessionLabels`]) and compares the bytes received with those first, so
//! that the labels of a running protocol cost neither the table's lock nor
//! a UTF-8 check.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock, PoisonError};

use rumpsteak_aura::{Label, Violation};
use rumpsteak_aura_transport::wire::RawLabel;

/// How many labels learned from peers the process keeps in all. Labels are
/// at most 255 bytes, so learned labels take at most about 256 KiB.
pub const MAX_INTERNED_LABELS: usize = 1024;

/// How many new labels one session may teach the process.
pub const MAX_LABELS_PER_SESSION: u32 = 64;

#[derive(Default)]
struct Table {
    labels: HashSet<&'static str>,
    learned: usize,
    /// How many labels each identified peer taught. An entry exists only
    /// for a peer that taught one, so there are at most
    /// [`MAX_INTERNED_LABELS`] of them.
    by_peer: HashMap<Box<str>, u32>,
}

fn table() -> std::sync::MutexGuard<'static, Table> {
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    // A panic while holding this lock cannot leave the table inconsistent
    // (an insert either happened or not), so a poisoned lock is still usable.
    TABLE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Registers labels the application handles, so that `offer` returns them
/// without learning them, whatever other peers have sent.
///
/// # Examples
///
/// ```
/// use rumpsteak_aura::Label;
/// use rumpsteak_aura_handler::{intern_label, register_labels};
///
/// const ACCEPT: Label = Label("accept");
/// register_labels(&[ACCEPT]);
/// assert!(std::ptr::eq(intern_label("accept")?, ACCEPT.0));
/// # Ok::<(), rumpsteak_aura::Violation>(())
/// ```
pub fn register_labels(labels: &[Label]) {
    let mut t = table();
    for l in labels {
        t.labels.insert(l.0);
    }
}

/// Registers labels given as text, such as those of an attached protocol:
/// each is copied once into the table (the application chose them, so they
/// do not count against the limits on labels learned from peers).
pub(crate) fn register_label_names<'a>(labels: impl IntoIterator<Item = &'a str>) {
    let mut t = table();
    for l in labels {
        if !t.labels.contains(l) {
            let copied: &'static str = Box::leak(l.to_owned().into_boxed_str());
            t.labels.insert(copied);
        }
    }
}

/// Returns the process-wide `&'static str` for `label`, learning it if the
/// process-wide limit allows.
///
/// # Examples
///
/// ```
/// use rumpsteak_aura_handler::intern_label;
///
/// let a = intern_label(&String::from("left"))?;
/// let b = intern_label("left")?;
/// assert!(std::ptr::eq(a, b));
/// # Ok::<(), rumpsteak_aura::Violation>(())
/// ```
pub fn intern_label(label: &str) -> Result<&'static str, Violation> {
    let mut unlimited = u32::MAX;
    resolve(label, &mut unlimited, None)
}

/// One session's view of the label table: the labels it resolved lately,
/// which later offers find without taking the table's lock, and how many
/// more labels it may teach the process.
#[derive(Debug)]
pub(crate) struct SessionLabels {
    recent: [Option<&'static str>; RECENT_LABELS],
    next: usize,
    quota: u32,
}

/// How many labels a session remembers; a choice seldom has more branches.
const RECENT_LABELS: usize = 8;

impl Default for SessionLabels {
    fn default() -> Self {
        SessionLabels {
            recent: [None; RECENT_LABELS],
            next: 0,
            quota: MAX_LABELS_PER_SESSION,
        }
    }
}

impl SessionLabels {
    /// The label, if this session resolved it lately: a few byte
    /// comparisons, no lock.
    pub(crate) fn recent(&self, label: RawLabel<'_>) -> Option<&'static str> {
        self.recent
            .iter()
            .flatten()
            .copied()
            .find(|known| label.is(known))
    }

    /// Returns the process-wide `&'static str` for `label` from the table,
    /// learning it if this session's quota, the quota of the `peer` it
    /// comes from (when the transport knows who that is) and the
    /// process-wide limit allow, and remembers it as recent.
    pub(crate) fn learn(
        &mut self,
        label: &str,
        peer: Option<&str>,
    ) -> Result<&'static str, Violation> {
        let resolved = resolve(label, &mut self.quota, peer)?;
        self.recent[self.next] = Some(resolved);
        self.next = (self.next + 1) % RECENT_LABELS;
        Ok(resolved)
    }
}

/// Like [`intern_label`], charging a newly learned label to a session's
/// `quota` and to its `peer`'s.
pub(crate) fn resolve(
    label: &str,
    quota: &mut u32,
    peer: Option<&str>,
) -> Result<&'static str, Violation> {
    let mut t = table();
    if let Some(known) = t.labels.get(label) {
        return Ok(known);
    }
    let too_many = |limit: usize| Violation::TooManyLabels {
        label: label.to_owned(),
        limit,
    };
    if *quota == 0 {
        return Err(too_many(MAX_LABELS_PER_SESSION as usize));
    }
    let taught = peer.map_or(0, |p| t.by_peer.get(p).copied().unwrap_or(0));
    if taught >= MAX_LABELS_PER_SESSION {
        return Err(too_many(MAX_LABELS_PER_SESSION as usize));
    }
    if t.learned >= MAX_INTERNED_LABELS {
        return Err(too_many(MAX_INTERNED_LABELS));
    }
    let learned: &'static str = Box::leak(label.to_owned().into_boxed_str());
    t.labels.insert(learned);
    t.learned += 1;
    if let Some(p) = peer {
        *t.by_peer.entry(p.into()).or_insert(0) += 1;
    }
    *quota -= 1;
    Ok(learned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_charges_each_new_label_once_and_remembers_it() {
        let mut session = SessionLabels::default();
        // Distinct from every other test's labels: the table is process-wide.
        let names: Vec<String> = (0..RECENT_LABELS + 2)
            .map(|i| format!("session-labels-test-{i}"))
            .collect();
        let first: Vec<&'static str> = names
            .iter()
            .map(|n| session.learn(n, None))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(session.quota, MAX_LABELS_PER_SESSION - names.len() as u32);
        // The last RECENT_LABELS are recent, the first two no longer.
        for (k, (name, earlier)) in names.iter().zip(&first).enumerate() {
            let recent = session.recent(RawLabel::from(name.as_str()));
            if k < 2 {
                assert_eq!(recent, None, "{name}");
            } else {
                assert!(recent.is_some_and(|r| std::ptr::eq(r, *earlier)), "{name}");
            }
        }
        // Learning them again is not charged again and gives the same
        // `&'static str` as before.
        for (name, earlier) in names.iter().zip(&first) {
            let again = session.learn(name, None).unwrap();
            assert!(std::ptr::eq(again, *earlier), "{name}");
        }
        assert_eq!(session.quota, MAX_LABELS_PER_SESSION - names.len() as u32);
    }

    #[test]
    fn one_peer_teaches_at_most_its_quota_over_all_its_sessions() {
        let peer = Some("address:203.0.113.9");
        let mut taught = 0;
        // Many sessions of one peer, each with a fresh session quota.
        'sessions: for s in 0..10 {
            let mut session = SessionLabels::default();
            for l in 0..MAX_LABELS_PER_SESSION {
                match session.learn(&format!("peer-quota-test-{s}-{l}"), peer) {
                    Ok(_) => taught += 1,
                    Err(Violation::TooManyLabels { limit, .. }) => {
                        assert_eq!(limit, MAX_LABELS_PER_SESSION as usize);
                        break 'sessions;
                    }
                    Err(other) => panic!("{other}"),
                }
            }
        }
        assert_eq!(taught, MAX_LABELS_PER_SESSION);
        // Another peer, and a session with no known peer, still learn.
        let mut other = SessionLabels::default();
        assert!(
            other
                .learn("peer-quota-test-other", Some("role:Buyer"))
                .is_ok()
        );
        assert!(other.learn("peer-quota-test-anonymous", None).is_ok());
        // What the peer taught is known to everyone, at no charge.
        assert!(other.learn("peer-quota-test-0-0", peer).is_ok());
    }
}
