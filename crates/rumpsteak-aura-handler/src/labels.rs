//! Turning labels received from peers into `Label(&'static str)`.
//!
//! `offer` must return a `&'static str`, but the text comes off the wire.
//! Each distinct label is copied once into a process-wide table and reused
//! afterwards, so receiving the same label a million times costs nothing
//! more than receiving it once. The table is capped: a peer that sends an
//! endless stream of new labels gets an error, not our memory.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};

use rumpsteak_aura::Violation;

/// How many distinct labels received from peers the process keeps. Labels
/// are at most 255 bytes, so the table holds at most about 256 KiB of text.
pub const MAX_INTERNED_LABELS: usize = 1024;

fn table() -> &'static Mutex<HashSet<&'static str>> {
    static TABLE: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    TABLE.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Returns the process-wide `&'static str` for `label`, adding it to the
/// table if there is room.
///
/// # Examples
///
/// ```
/// use rumpsteak_aura_handler::intern_label;
///
/// let a = intern_label(&String::from("accept"))?;
/// let b = intern_label("accept")?;
/// assert!(std::ptr::eq(a, b));
/// # Ok::<(), rumpsteak_aura::Violation>(())
/// ```
pub fn intern_label(label: &str) -> Result<&'static str, Violation> {
    // A panic while holding this lock cannot leave the set inconsistent (an
    // insert either happened or not), so a poisoned lock is still usable.
    let mut set = table().lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(known) = set.get(label) {
        return Ok(known);
    }
    if set.len() >= MAX_INTERNED_LABELS {
        return Err(Violation::TooManyLabels {
            label: label.to_owned(),
            limit: MAX_INTERNED_LABELS,
        });
    }
    let leaked: &'static str = Box::leak(label.to_owned().into_boxed_str());
    set.insert(leaked);
    Ok(leaked)
}
