//! Module-wide settings, fixed by the `loadmodule` arguments.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use mvptree::{DEFAULT_SYNC_THRESHOLD, MAX_SYNC_THRESHOLD};

static DEFAULT_THRESHOLD: AtomicUsize = AtomicUsize::new(DEFAULT_SYNC_THRESHOLD);
static TITLE_HASHES: AtomicBool = AtomicBool::new(true);

/// The sync threshold new keys start with (`SYNC_THRESHOLD n`, default 500).
pub fn default_sync_threshold() -> usize {
    DEFAULT_THRESHOLD.load(Ordering::Relaxed)
}

/// Whether adds write the `<key>:<id>` title hashes (`TITLE_HASHES yes|no`, default yes).
pub fn title_hashes() -> bool {
    TITLE_HASHES.load(Ordering::Relaxed)
}

/// Parses and applies `[SYNC_THRESHOLD n] [TITLE_HASHES yes|no]`; on error nothing changes
/// and the message says what was wrong, for the load failure's log line.
pub fn apply_module_args(args: &[&[u8]]) -> Result<(), String> {
    let mut threshold = DEFAULT_SYNC_THRESHOLD;
    let mut title_hashes = true;
    let mut words = args.iter();
    while let Some(&option) = words.next() {
        let shown = String::from_utf8_lossy(option);
        let Some(&value) = words.next() else {
            return Err(format!("module argument {shown} needs a value"));
        };
        let value_shown = String::from_utf8_lossy(value);
        if option.eq_ignore_ascii_case(b"SYNC_THRESHOLD") {
            threshold = crate::args::sync_threshold(value).map_err(|_| {
                format!("SYNC_THRESHOLD must be an integer in 1..={MAX_SYNC_THRESHOLD}, got '{value_shown}'")
            })?;
        } else if option.eq_ignore_ascii_case(b"TITLE_HASHES") {
            title_hashes = if value.eq_ignore_ascii_case(b"yes") {
                true
            } else if value.eq_ignore_ascii_case(b"no") {
                false
            } else {
                return Err(format!(
                    "TITLE_HASHES must be yes or no, got '{value_shown}'"
                ));
            };
        } else {
            return Err(format!(
                "unknown module argument '{shown}' (expected SYNC_THRESHOLD n or TITLE_HASHES yes|no)"
            ));
        }
    }
    DEFAULT_THRESHOLD.store(threshold, Ordering::Relaxed);
    TITLE_HASHES.store(title_hashes, Ordering::Relaxed);
    Ok(())
}
