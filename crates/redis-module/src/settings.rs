//! Module-wide settings: fixed by the `loadmodule` arguments, and `max-reply-rows` also
//! changeable at run time (`CONFIG SET imgscout.max-reply-rows n`).

use std::ffi::{c_char, c_int, c_longlong, c_void};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use mvptree::{DEFAULT_SYNC_THRESHOLD, MAX_SYNC_THRESHOLD};
use redis_module::{raw, Context};

/// Rows one reply may hold unless configured otherwise. A reply is written into the client's
/// buffer on the event loop, about 0.1 µs per value, so 100,000 rows of three values stay
/// near 30 ms; larger answers are paged (`CURSOR`) or cut (`LIMIT`).
pub const DEFAULT_MAX_REPLY_ROWS: usize = 100_000;
/// Upper bound of `MAX_REPLY_ROWS` / `imgscout.max-reply-rows`.
pub const MAX_MAX_REPLY_ROWS: usize = 100_000_000;
/// Upper bound of `WORKER_THREADS`.
pub const MAX_WORKER_THREADS: usize = 64;

static DEFAULT_THRESHOLD: AtomicUsize = AtomicUsize::new(DEFAULT_SYNC_THRESHOLD);
static TITLE_HASHES: AtomicBool = AtomicBool::new(true);
static MAX_REPLY_ROWS: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_REPLY_ROWS);
static WORKER_THREADS: AtomicUsize = AtomicUsize::new(usize::MAX);
static BACKGROUND_BUILD_MIN: AtomicUsize = AtomicUsize::new(DEFAULT_BACKGROUND_BUILD_MIN);

/// Segments rebuilt with at least this many entries get their search structures on a worker
/// unless configured otherwise: building 50,000 takes the event loop about 20 ms, building
/// 1,000,000 about half a second.
pub const DEFAULT_BACKGROUND_BUILD_MIN: usize = 50_000;

/// The sync threshold new keys start with (`SYNC_THRESHOLD n`, default 500).
pub fn default_sync_threshold() -> usize {
    DEFAULT_THRESHOLD.load(Ordering::Relaxed)
}

/// Whether adds write the `<key>:<id>` title hashes (`TITLE_HASHES yes|no`, default yes).
pub fn title_hashes() -> bool {
    TITLE_HASHES.load(Ordering::Relaxed)
}

/// Rows a reply may hold (`MAX_REPLY_ROWS n`, `imgscout.max-reply-rows`).
pub fn max_reply_rows() -> usize {
    MAX_REPLY_ROWS.load(Ordering::Relaxed)
}

/// Threads that run heavy reads off the event loop (`WORKER_THREADS n`; 0 runs everything
/// on the event loop). Default: one per core, at most 8.
pub fn worker_threads() -> usize {
    match WORKER_THREADS.load(Ordering::Relaxed) {
        usize::MAX => std::thread::available_parallelism().map_or(2, |n| n.get().min(8)),
        n => n,
    }
}

/// Rebuilds of at least this many entries build their structures on a worker
/// (`BACKGROUND_BUILD_MIN n`); `usize::MAX` when there are no workers.
pub fn background_build_min() -> usize {
    if worker_threads() == 0 {
        usize::MAX
    } else {
        BACKGROUND_BUILD_MIN.load(Ordering::Relaxed)
    }
}

fn parse_count(value: &[u8], max: usize) -> Option<usize> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value)
        .ok()?
        .parse::<usize>()
        .ok()
        .filter(|&n| n <= max)
}

/// Parses and applies `[SYNC_THRESHOLD n] [TITLE_HASHES yes|no] [MAX_REPLY_ROWS n]
/// [WORKER_THREADS n] [BACKGROUND_BUILD_MIN n]`; on error nothing changes and the message says what was wrong, for
/// the load failure's log line.
pub fn apply_module_args(args: &[&[u8]]) -> Result<(), String> {
    let mut threshold = DEFAULT_SYNC_THRESHOLD;
    let mut title_hashes = true;
    let mut max_rows = DEFAULT_MAX_REPLY_ROWS;
    let mut workers = usize::MAX;
    let mut background_build_min = DEFAULT_BACKGROUND_BUILD_MIN;
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
        } else if option.eq_ignore_ascii_case(b"MAX_REPLY_ROWS") {
            max_rows = parse_count(value, MAX_MAX_REPLY_ROWS)
                .filter(|&n| n > 0)
                .ok_or_else(|| {
                    format!("MAX_REPLY_ROWS must be an integer in 1..={MAX_MAX_REPLY_ROWS}, got '{value_shown}'")
                })?;
        } else if option.eq_ignore_ascii_case(b"WORKER_THREADS") {
            workers = parse_count(value, MAX_WORKER_THREADS).ok_or_else(|| {
                format!("WORKER_THREADS must be an integer in 0..={MAX_WORKER_THREADS}, got '{value_shown}'")
            })?;
        } else if option.eq_ignore_ascii_case(b"BACKGROUND_BUILD_MIN") {
            background_build_min = parse_count(value, 1 << 31)
                .filter(|&n| n > 0)
                .ok_or_else(|| {
                    format!("BACKGROUND_BUILD_MIN must be an integer in 1..=2147483648, got '{value_shown}'")
                })?;
        } else {
            return Err(format!(
                "unknown module argument '{shown}' (expected SYNC_THRESHOLD n, TITLE_HASHES yes|no, MAX_REPLY_ROWS n, WORKER_THREADS n or BACKGROUND_BUILD_MIN n)"
            ));
        }
    }
    DEFAULT_THRESHOLD.store(threshold, Ordering::Relaxed);
    TITLE_HASHES.store(title_hashes, Ordering::Relaxed);
    MAX_REPLY_ROWS.store(max_rows, Ordering::Relaxed);
    WORKER_THREADS.store(workers, Ordering::Relaxed);
    BACKGROUND_BUILD_MIN.store(background_build_min, Ordering::Relaxed);
    Ok(())
}

/// # Safety
/// Called by Redis (config callbacks); reads nothing it passes.
unsafe extern "C" fn get_max_reply_rows(
    _name: *const c_char,
    _privdata: *mut c_void,
) -> c_longlong {
    max_reply_rows() as c_longlong
}

/// # Safety
/// Called by Redis (config callbacks); reads nothing it passes but the value.
unsafe extern "C" fn set_max_reply_rows(
    _name: *const c_char,
    value: c_longlong,
    _privdata: *mut c_void,
    _err: *mut *mut raw::RedisModuleString,
) -> c_int {
    // Redis has checked the bounds given at registration.
    MAX_REPLY_ROWS.store(value as usize, Ordering::Relaxed);
    raw::REDISMODULE_OK as c_int
}

/// Registers `imgscout.max-reply-rows` (its default: the load argument, else 100,000) and
/// applies what the server's configuration says of it.
pub fn register_configs(ctx: &Context) -> Result<(), String> {
    // SAFETY: plain calls into the module API during OnLoad, with a NUL-terminated name and
    // callbacks that live as long as the module.
    unsafe {
        let register = raw::RedisModule_RegisterNumericConfig
            .ok_or("this server has no module configuration API")?;
        if register(
            ctx.ctx,
            c"max-reply-rows".as_ptr(),
            max_reply_rows() as c_longlong,
            raw::REDISMODULE_CONFIG_DEFAULT,
            1,
            MAX_MAX_REPLY_ROWS as c_longlong,
            Some(get_max_reply_rows),
            Some(set_max_reply_rows),
            None,
            std::ptr::null_mut(),
        ) != raw::REDISMODULE_OK as c_int
        {
            return Err("cannot register imgscout.max-reply-rows".into());
        }
        let load = raw::RedisModule_LoadConfigs.ok_or("no RedisModule_LoadConfigs")?;
        if load(ctx.ctx) != raw::REDISMODULE_OK as c_int {
            return Err("cannot apply imgscout.max-reply-rows from the configuration".into());
        }
    }
    Ok(())
}
