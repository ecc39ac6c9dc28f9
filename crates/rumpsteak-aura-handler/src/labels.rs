//! Turning labels received from peers into `Label(&'static str)`.
//!
//! `offer` must return a `&'static str`, but the text comes off the wire.
//! Labels live in one process-wide table:
//!
//! - labels the application *registers* ([`register_labels`]), and the
//!   labels of every protocol attached to an endpoint, never count against
//!   any limit;
//! - a label a peer sends that is not in the table is *learned*: copied once,
//!   then reused forever. Learning is capped twice: each session may teach at
//!   most [`MAX_LABELS_PER_SESSION`] labels, and the process keeps at most
//!   [`MAX_INTERNED_LABELS`] learned labels in all.
//!
//! So receiving the same label a million times costs nothing more than
//! receiving it once, a hostile peer cannot grow our memory without bound,
//! and it cannot lock other sessions out of the labels the application
//! registered. `offer_among` needs no table at all.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};

use rumpsteak_aura::{Label, Violation};

/// How many labels learned from peers the process keeps in all. Labels are
/// at most 255 bytes, so learned labels take at most about 256 KiB.
pub const MAX_INTERNED_LABELS: usize = 1024;

/// How many new labels one session may teach the process.
pub const MAX_LABELS_PER_SESSION: u32 = 64;

#[derive(Default)]
struct Table {
    labels: HashSet<&'static str>,
    learned: usize,
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
    resolve(label, &mut unlimited)
}

/// Like [`intern_label`], charging a newly learned label to a session's
/// `quota`.
pub(crate) fn resolve(label: &str, quota: &mut u32) -> Result<&'static str, Violation> {
    let mut t = table();
    if let Some(known) = t.labels.get(label) {
        return Ok(known);
    }
    if *quota == 0 {
        return Err(Violation::TooManyLabels {
            label: label.to_owned(),
            limit: MAX_LABELS_PER_SESSION as usize,
        });
    }
    if t.learned >= MAX_INTERNED_LABELS {
        return Err(Violation::TooManyLabels {
            label: label.to_owned(),
            limit: MAX_INTERNED_LABELS,
        });
    }
    let learned: &'static str = Box::leak(label.to_owned().into_boxed_str());
    t.labels.insert(learned);
    t.learned += 1;
    *quota -= 1;
    Ok(learned)
}
