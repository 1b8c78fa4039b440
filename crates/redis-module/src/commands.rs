//! The `imgscout.*` command handlers: parse, call the core, shape the reply.
//!
//! A key's code width is fixed when the key is created: by `imgscout.config key BITS n`, or by
//! the first `imgscout.add`/`imgscout.madd`, at the width of its hashes. Hashes are read at the
//! key's width ([`args::code`]), so each handler reaches the index through [`each_width!`].

use std::ffi::CStr;
use std::os::raw::{c_char, c_long};

use mvptree::format::AnyIndex;
use mvptree::{text, Code, Error, Index, InfoValue, Match, PairsCursor, Snapshot};
use redis_module::{
    raw, Context, ContextFlags, NotifyEvent, RedisError, RedisResult, RedisString, RedisValue,
};

use crate::args::{self, syntax_error};
use crate::data_type::INDEX_TYPE;
use crate::settings;
use crate::variadic::call_with_buffers;
use crate::width::{self, each_width, AnySnapshot};
use crate::worker;

/// Reads estimated to take at least this long run on a worker thread, the client blocked,
/// so that the event loop stays free; cheaper ones run inline, where a thread hop (tens of
/// microseconds) would cost more than the search.
const OFFLOAD_NS: f64 = 100_000.0;

const OK: RedisValue = RedisValue::SimpleStringStatic("OK");

fn check_arity(args: &[RedisString], allowed: impl Fn(usize) -> bool) -> Result<(), RedisError> {
    if allowed(args.len()) {
        Ok(())
    } else {
        Err(RedisError::WrongArity)
    }
}

/// Runs `body` on the index at `key` for reading; `None` when the key is missing.
fn with_index<T>(
    ctx: &Context,
    key: &RedisString,
    body: impl FnOnce(Option<&AnyIndex>) -> Result<T, RedisError>,
) -> Result<T, RedisError> {
    let opened = ctx.open_key(key);
    // get_value fails only for a key of another type; Redis clients expect WRONGTYPE.
    let index = opened
        .get_value::<AnyIndex>(&INDEX_TYPE)
        .map_err(|_| RedisError::WrongType)?;
    let builds_waiting = |index: &AnyIndex| each_width!(AnyIndex, index, index => index.builds_ready() || index.has_build_jobs());
    if index.is_some_and(builds_waiting) {
        // Once per background build: reopened for writing to put the build in place.
        drop(opened);
        return with_index_mut(ctx, key, None, |index, _| body(index.map(|index| &*index)));
    }
    body(index)
}

/// Keeps an index's background builds moving: finished ones are put in place (a linear
/// pass, on the event loop), new ones are handed to the workers. Called wherever the module
/// holds an index mutably, before and after a command touches it.
fn maintain(index: &mut AnyIndex) {
    each_width!(AnyIndex, index, index => maintain_width(index));
}

fn maintain_width<C: Code>(index: &mut Index<C>) {
    index.set_deferred_build_min_len(settings::background_build_min());
    index.install_builds();
    for job in index.take_build_jobs() {
        worker::spawn(move || job.run());
    }
}

/// A snapshot of the index at `key` (`None` when the key is missing), for a read that may
/// run on a worker.
fn snapshot_of(ctx: &Context, key: &RedisString) -> Result<Option<AnySnapshot>, RedisError> {
    with_index(ctx, key, |index| Ok(index.map(width::snapshot)))
}

/// Opens `key` for writing and hands its index to `body`, creating an empty one of codes of
/// `create` bits (with the module's default threshold) when the key is missing and `create`
/// is given. `body` learns whether the index was just created.
fn with_index_mut<T>(
    ctx: &Context,
    key_name: &RedisString,
    create: Option<u32>,
    body: impl FnOnce(Option<&mut AnyIndex>, bool) -> Result<T, RedisError>,
) -> Result<T, RedisError> {
    let key = ctx.open_key_writable(key_name);
    let existing = key
        .get_value::<AnyIndex>(&INDEX_TYPE)
        .map_err(|_| RedisError::WrongType)?;
    if let Some(index) = existing {
        maintain(index);
        let result = body(Some(&mut *index), false);
        maintain(index);
        return result;
    }
    let Some(bits) = create else {
        return body(None, false);
    };
    let mut fresh = AnyIndex::with_sync_threshold(bits, settings::default_sync_threshold())
        .map_err(args::reply_error)?;
    maintain(&mut fresh);
    // Fill the new index before storing it so that a failing command leaves no empty key.
    let result = body(Some(&mut fresh), true)?;
    maintain(&mut fresh);
    key.set_value(&INDEX_TYPE, fresh)?;
    Ok(result)
}

/// `RedisModule_Replicate(ctx, command, "b...", ...)` with binary-safe arguments.
fn replicate(ctx: &Context, command: &CStr, args: &[&[u8]]) {
    // SAFETY: the API table is filled in at load and not written afterwards.
    let Some(replicate) = (unsafe { raw::RedisModule_Replicate }) else {
        return;
    };
    // SAFETY: the buffers outlive the call; the format matches their count.
    unsafe {
        call_with_buffers!(replicate, (ctx.ctx, command.as_ptr()), args);
    }
}

/// The `imgscout.config` options that create `index` as it was created: its width (left out
/// at 64 bits, so a 64-bit key replicates and rewrites exactly as before wider codes existed)
/// and its threshold.
pub fn creation_options(index: &AnyIndex) -> Vec<String> {
    let mut options = Vec::new();
    if index.bits() != 64 {
        options.extend(["BITS".to_string(), index.bits().to_string()]);
    }
    let threshold = each_width!(AnyIndex, index, index => index.sync_threshold());
    options.extend(["SYNC_THRESHOLD".to_string(), threshold.to_string()]);
    options
}

/// A key created by a write carries the module's default threshold, which may differ on a
/// replica or at AOF load, and the width its first hash had: propagate both explicitly so
/// every copy is the same index and syncs at the same points.
fn replicate_creation(ctx: &Context, key: &RedisString, index: &AnyIndex) {
    let options = creation_options(index);
    let mut args: Vec<&[u8]> = vec![key.as_slice()];
    args.extend(options.iter().map(String::as_bytes));
    replicate(ctx, c"imgscout.config", &args);
}

/// `hash` is the canonical text of [`text::format_code`].
fn replicate_add(ctx: &Context, key: &RedisString, hash: &str, title: &[u8], id: u64) {
    let id = id.to_string();
    replicate(
        ctx,
        c"imgscout.add",
        &[key.as_slice(), hash.as_bytes(), title, id.as_bytes()],
    );
}

fn notify(ctx: &Context, event: &str, key: &RedisString) {
    ctx.notify_keyspace_event(NotifyEvent::MODULE, event, key);
}

/// The Redis hash `<key>:<id>` whose field `title` mirrors an entry's title (as the old
/// module did). `None` when it must not be touched: title hashes are turned off, or in a
/// cluster it would live in another slot than the index key (a node writes only its keys).
fn title_hash_name(ctx: &Context, key: &RedisString, id: u64) -> Option<RedisString> {
    if !settings::title_hashes() {
        return None;
    }
    let mut name = key.as_slice().to_vec();
    name.push(b':');
    name.extend_from_slice(id.to_string().as_bytes());
    if ctx.get_flags().contains(ContextFlags::CLUSTER)
        && crate::slot::key_slot(&name) != crate::slot::key_slot(key.as_slice())
    {
        return None;
    }
    Some(RedisString::create_from_slice(ctx.ctx, &name))
}

/// Written through the key API, which Redis does not propagate: the replica's or the AOF's
/// own `imgscout.add` writes it there.
fn write_title_hash(ctx: &Context, key: &RedisString, id: u64, title: &[u8]) {
    let Some(name) = title_hash_name(ctx, key, id) else {
        return;
    };
    let hash_key = ctx.open_key_writable(&name);
    // Never clobber a user's non-hash value that happens to have this name.
    if matches!(
        hash_key.key_type(),
        raw::KeyType::Empty | raw::KeyType::Hash
    ) {
        hash_key.hash_set("title", RedisString::create_from_slice(ctx.ctx, title));
    }
}

fn delete_title_hash(ctx: &Context, key: &RedisString, id: u64) {
    let Some(name) = title_hash_name(ctx, key, id) else {
        return;
    };
    let hash_key = ctx.open_key_writable(&name);
    if hash_key.key_type() == raw::KeyType::Hash {
        let _ = hash_key.delete();
    }
}

/// `imgscout.add key hashvalue title [id]`: a missing key is created at the hash's width.
pub fn add(ctx: &Context, args: &[RedisString]) -> RedisResult {
    check_arity(args, |n| n == 4 || n == 5)?;
    let key = &args[1];
    let hash = args[2].as_slice();
    let bits = args::hash_bits(hash)?;
    let title = args[3].as_slice();
    let explicit_id = args.get(4).map(|id| args::id(id.as_slice())).transpose()?;
    let (id, hash) = with_index_mut(ctx, key, Some(bits), |index, created| {
        let index = index.expect("created when missing");
        let added = each_width!(AnyIndex, &mut *index, index => {
            let hash = args::code(hash)?;
            let id = index
                .add(hash, title, explicit_id)
                .map_err(args::reply_error)?;
            (id, text::format_code(hash))
        });
        if created {
            replicate_creation(ctx, key, index);
        }
        Ok(added)
    })?;
    replicate_add(ctx, key, &hash, title, id);
    write_title_hash(ctx, key, id, title);
    notify(ctx, "imgscout.add", key);
    Ok(RedisValue::Integer(id as i64))
}

/// `imgscout.madd key hashvalue title [hashvalue title ...]`
/// `imgscout.madd key IDS hashvalue title id [hashvalue title id ...]`
///
/// All validated (ids against the index and each other too, hashes at one width), then all
/// added or none; a missing key is created at the width of the first hash. Replicated as one
/// explicit-id `imgscout.add` per entry (Redis wraps them in MULTI/EXEC), so replicas and the
/// AOF assign the same ids.
pub fn madd(ctx: &Context, args: &[RedisString]) -> RedisResult {
    let with_ids = args
        .get(2)
        .is_some_and(|word| args::is_keyword(word.as_slice(), "IDS"));
    let (stride, first) = if with_ids { (3, 3) } else { (2, 2) };
    check_arity(args, |n| n > first && (n - first) % stride == 0)?;
    let key = &args[1];
    let entries = args[first..]
        .chunks_exact(stride)
        .map(|entry| {
            let explicit_id = match entry.get(2) {
                Some(id) => Some(args::id(id.as_slice())?),
                None => None,
            };
            Ok((entry[0].as_slice(), entry[1].as_slice(), explicit_id))
        })
        .collect::<Result<Vec<(&[u8], &[u8], Option<u64>)>, RedisError>>()?;
    let bits = args::hash_bits(entries[0].0)?;
    let (ids, hashes) = with_index_mut(ctx, key, Some(bits), |index, created| {
        let index = index.expect("created when missing");
        let added = each_width!(AnyIndex, &mut *index, index => {
            let codes = entries
                .iter()
                .map(|&(hash, title, id)| Ok((args::code(hash)?, title, id)))
                .collect::<Result<Vec<_>, RedisError>>()?;
            let ids = index
                .add_many(codes.iter().copied())
                .map_err(args::reply_error)?;
            let hashes: Vec<String> =
                codes.iter().map(|&(hash, _, _)| text::format_code(hash)).collect();
            (ids, hashes)
        });
        if created {
            replicate_creation(ctx, key, index);
        }
        Ok(added)
    })?;
    for ((&(_, title, _), hash), &id) in entries.iter().zip(&hashes).zip(&ids) {
        replicate_add(ctx, key, hash, title, id);
        write_title_hash(ctx, key, id, title);
    }
    notify(ctx, "imgscout.madd", key);
    Ok(RedisValue::Array(
        ids.into_iter()
            .map(|id| RedisValue::Integer(id as i64))
            .collect(),
    ))
}

/// `imgscout.sync key`
pub fn sync(ctx: &Context, args: &[RedisString]) -> RedisResult {
    check_arity(args, |n| n == 2)?;
    let key = &args[1];
    let synced = with_index_mut(ctx, key, None, |index, _| {
        Ok(index.map(|index| {
            each_width!(AnyIndex, index, index => {
                let had_pending = index.pending_len() > 0;
                index.sync();
                had_pending
            })
        }))
    })?;
    if synced == Some(true) {
        ctx.replicate_verbatim();
        notify(ctx, "imgscout.sync", key);
    }
    Ok(OK)
}

fn matches_reply<C: Code>(snapshot: &Snapshot<C>, matches: Vec<Match>) -> RedisValue {
    RedisValue::Array(
        matches
            .into_iter()
            .map(|m| {
                let title = snapshot
                    .title(m.id)
                    .expect("every match is an entry of the snapshot")
                    .to_vec();
                RedisValue::Array(vec![
                    RedisValue::StringBuffer(title),
                    RedisValue::Integer(m.id as i64),
                    RedisValue::Integer(i64::from(m.distance)),
                ])
            })
            .collect(),
    )
}

const EMPTY: RedisValue = RedisValue::Array(Vec::new());

/// `imgscout.query key hashvalue radius [LIMIT count]`: answers of more than
/// `imgscout.max-reply-rows` rows are refused (ask for fewer with `LIMIT`, which also bounds
/// the search).
pub fn query(ctx: &Context, args: &[RedisString]) -> RedisResult {
    check_arity(args, |n| n >= 4)?;
    let hash = args[2].as_slice();
    let radius = args::radius(args[3].as_slice())?;
    let mut limit = None;
    let mut options = args[4..].iter();
    while let Some(option) = options.next() {
        if args::is_keyword(option.as_slice(), "LIMIT") {
            let count = options.next().ok_or_else(syntax_error)?;
            limit = Some(args::limit(count.as_slice())?);
        } else {
            return Err(syntax_error());
        }
    }
    let Some(snapshot) = snapshot_of(ctx, &args[1])? else {
        args::hash_bits(hash)?;
        return Ok(EMPTY);
    };
    each_width!(AnySnapshot, snapshot, snapshot => {
        let hash = args::code(hash)?;
        let max_rows = settings::max_reply_rows();
        let heavy = snapshot.range_cost_ns(radius) >= OFFLOAD_NS;
        worker::run(ctx, heavy, move || {
            let matches = snapshot
                .query_bounded(hash, radius, limit, max_rows)
                .map_err(args::reply_error)?;
            Ok(matches_reply(&snapshot, matches))
        })
    })
}

/// `imgscout.knn key hashvalue k`: refused before any work when the answer would hold more
/// than `imgscout.max-reply-rows` rows.
pub fn knn(ctx: &Context, args: &[RedisString]) -> RedisResult {
    check_arity(args, |n| n == 4)?;
    let hash = args[2].as_slice();
    let k = args::knn_k(args[3].as_slice())?;
    let Some(snapshot) = snapshot_of(ctx, &args[1])? else {
        args::hash_bits(hash)?;
        return Ok(EMPTY);
    };
    each_width!(AnySnapshot, snapshot, snapshot => {
        let hash = args::code(hash)?;
        let max_rows = settings::max_reply_rows();
        if k.min(snapshot.len()) > max_rows {
            return Err(args::reply_error(Error::TooManyRows(max_rows)));
        }
        let heavy = snapshot.knn_cost_ns(k) >= OFFLOAD_NS;
        worker::run(ctx, heavy, move || {
            let matches = snapshot.knn(hash, k);
            Ok(matches_reply(&snapshot, matches))
        })
    })
}

/// Rows `(id, distance)` of one query of a batch, flat: `[id, distance, id, distance, ...]`.
fn flat_rows(rows: impl Iterator<Item = Match>) -> RedisValue {
    RedisValue::Array(
        rows.flat_map(|m| {
            [
                RedisValue::Integer(m.id as i64),
                RedisValue::Integer(i64::from(m.distance)),
            ]
        })
        .collect(),
    )
}

fn codes<C: Code>(args: &[RedisString]) -> Result<Vec<C>, RedisError> {
    args.iter()
        .map(|hash| args::code(hash.as_slice()))
        .collect()
}

/// The reply of a batch read on a missing key: an empty row set per hash, once every hash is
/// known to be a hash of some width.
fn empty_rows(hashes: &[RedisString]) -> RedisResult {
    for hash in hashes {
        args::hash_bits(hash.as_slice())?;
    }
    Ok(RedisValue::Array(
        hashes
            .iter()
            .map(|_| RedisValue::Array(Vec::new()))
            .collect(),
    ))
}

/// `imgscout.mquery key radius [LIMIT count] hashvalue [hashvalue ...]`: one range query per
/// hash, in one reply: per hash, its rows as a flat `[id, distance, ...]` array in answer
/// order (titles are left out: `imgscout.mlookup` fetches the ones wanted). The rows of all
/// hashes together are capped by `imgscout.max-reply-rows`.
pub fn mquery(ctx: &Context, args: &[RedisString]) -> RedisResult {
    check_arity(args, |n| n >= 4)?;
    let radius = args::radius(args[2].as_slice())?;
    let (limit, first) = if args::is_keyword(args[3].as_slice(), "LIMIT") {
        let count = args.get(4).ok_or_else(syntax_error)?;
        (Some(args::limit(count.as_slice())?), 5)
    } else {
        (None, 3)
    };
    if args.len() <= first {
        return Err(RedisError::WrongArity);
    }
    let Some(snapshot) = snapshot_of(ctx, &args[1])? else {
        return empty_rows(&args[first..]);
    };
    each_width!(AnySnapshot, snapshot, snapshot => {
        let hashes = codes(&args[first..])?;
        let max_rows = settings::max_reply_rows();
        let heavy = snapshot.range_cost_ns(radius) * hashes.len() as f64 >= OFFLOAD_NS;
        worker::run(ctx, heavy, move || {
            let rows = snapshot
                .query_rows(&hashes, radius, limit, max_rows, 1)
                .map_err(args::reply_error)?;
            Ok(RedisValue::Array(
                (0..rows.queries())
                    .map(|i| flat_rows(rows.row(i)))
                    .collect(),
            ))
        })
    })
}

/// `imgscout.mknn key k hashvalue [hashvalue ...]`: the `k` nearest entries of each hash, in
/// one reply shaped as `imgscout.mquery`'s (fewer than `k` rows where the index holds fewer).
/// Refused before any work when the rows would number more than `imgscout.max-reply-rows`.
pub fn mknn(ctx: &Context, args: &[RedisString]) -> RedisResult {
    check_arity(args, |n| n >= 4)?;
    let k = args::knn_k(args[2].as_slice())?;
    let Some(snapshot) = snapshot_of(ctx, &args[1])? else {
        return empty_rows(&args[3..]);
    };
    each_width!(AnySnapshot, snapshot, snapshot => {
        let hashes = codes(&args[3..])?;
        let max_rows = settings::max_reply_rows();
        if k.min(snapshot.len()).saturating_mul(hashes.len()) > max_rows {
            return Err(args::reply_error(Error::TooManyRows(max_rows)));
        }
        let heavy = snapshot.knn_cost_ns(k) * hashes.len() as f64 >= OFFLOAD_NS;
        worker::run(ctx, heavy, move || {
            Ok(RedisValue::Array(
                hashes
                    .iter()
                    .map(|&hash| flat_rows(snapshot.knn(hash, k).into_iter()))
                    .collect(),
            ))
        })
    })
}

/// `[CURSOR cursor] [COUNT count]` of the paged forms: `None` for the plain form.
fn cursor_options(options: &[RedisString]) -> Result<Option<(&[u8], usize)>, RedisError> {
    let mut cursor = None;
    let mut count = None;
    let mut options = options.iter();
    while let Some(option) = options.next() {
        let value = options.next().ok_or_else(syntax_error)?.as_slice();
        if args::is_keyword(option.as_slice(), "CURSOR") {
            cursor = Some(value);
        } else if args::is_keyword(option.as_slice(), "COUNT") {
            // A page never holds more than one reply may.
            count = Some(args::count(value)?.min(settings::max_reply_rows()));
        } else {
            return Err(syntax_error());
        }
    }
    match (cursor, count) {
        (Some(cursor), count) => Ok(Some((cursor, count.unwrap_or(mvptree::DEFAULT_PAGE_ROWS)))),
        (None, Some(_)) => Err(syntax_error()),
        (None, None) => Ok(None),
    }
}

fn page_reply(next: Option<String>, rows: Vec<RedisValue>) -> RedisValue {
    RedisValue::Array(vec![
        RedisValue::BulkString(next.unwrap_or_else(|| "0".to_string())),
        RedisValue::Array(rows),
    ])
}

fn pair_row(p: &mvptree::Pair) -> RedisValue {
    RedisValue::Array(vec![
        RedisValue::Integer(p.a as i64),
        RedisValue::Integer(p.b as i64),
        RedisValue::Integer(i64::from(p.distance)),
    ])
}

/// `imgscout.pairs key radius [CURSOR cursor [COUNT count]]`: the self-join, every pair of
/// indexed entries within the radius as `[smaller id, larger id, distance]`.
///
/// Plain: sorted by distance, then ids, and refused when more than `imgscout.max-reply-rows`
/// (the join stops there). With `CURSOR` (`0` to start): `[next cursor, rows]`, at most
/// `count` rows (default 1000, at most `imgscout.max-reply-rows`) from at most `count` anchors, smaller ids in order; the cursor
/// is `0` again at the end, and the pages of a walk together hold every pair once.
pub fn pairs(ctx: &Context, args: &[RedisString]) -> RedisResult {
    check_arity(args, |n| n >= 3)?;
    let radius = args::radius(args[2].as_slice())?;
    let paged = cursor_options(&args[3..])?;
    let cursor = paged
        .map(|(text, count)| {
            let cursor = std::str::from_utf8(text)
                .map_err(|_| Error::InvalidCursor)
                .and_then(str::parse::<PairsCursor>)
                .map_err(args::reply_error)?;
            Ok::<_, RedisError>((cursor, count))
        })
        .transpose()?;
    let Some(snapshot) = snapshot_of(ctx, &args[1])? else {
        return Ok(match cursor {
            Some(_) => page_reply(None, Vec::new()),
            None => EMPTY,
        });
    };
    each_width!(AnySnapshot, snapshot, snapshot => pairs_on(ctx, snapshot, radius, cursor))
}

fn pairs_on<C: Code>(
    ctx: &Context,
    snapshot: Snapshot<C>,
    radius: u32,
    cursor: Option<(PairsCursor, usize)>,
) -> RedisResult {
    let max_rows = settings::max_reply_rows();
    match cursor {
        None => {
            let heavy = snapshot.len() >= 2048;
            worker::run(ctx, heavy, move || {
                let pairs = snapshot
                    .pairs_bounded(radius, max_rows)
                    .map_err(args::reply_error)?;
                Ok(RedisValue::Array(pairs.iter().map(pair_row).collect()))
            })
        }
        Some((cursor, count)) => {
            // A page searches once per anchor it visits; reaching them is a merge of the
            // segments' id runs, a few binary searches.
            let cost = count as f64 * snapshot.range_cost_ns(radius);
            worker::run(ctx, cost >= OFFLOAD_NS, move || {
                let (pairs, next) = snapshot.pairs_page(radius, cursor, count);
                Ok(page_reply(
                    next.map(|c| c.to_string()),
                    pairs.iter().map(pair_row).collect(),
                ))
            })
        }
    }
}

/// An entry copied out of the index, so that its reply can be written on a worker.
struct EntryRow {
    id: u64,
    /// [`text::format_code`]'s text.
    hash: String,
    title: Vec<u8>,
    pending: bool,
}

impl EntryRow {
    fn of<C: Code>(e: &mvptree::Entry<'_, C>) -> EntryRow {
        EntryRow {
            id: e.id,
            hash: text::format_code(e.hash),
            title: e.title.to_vec(),
            pending: e.pending,
        }
    }

    fn reply(self) -> RedisValue {
        RedisValue::Array(vec![
            RedisValue::Integer(self.id as i64),
            RedisValue::BulkString(self.hash),
            RedisValue::StringBuffer(self.title),
            RedisValue::Integer(i64::from(self.pending)),
        ])
    }
}

/// Entry replies longer than this are written on a worker: copying the rows out costs the
/// event loop far less than writing them into the reply.
const OFFLOAD_ENTRY_ROWS: usize = 2000;

/// `imgscout.entries key [CURSOR cursor [COUNT count]]`: entries as `[id, hash, title,
/// pending]`. The hash is a string: decimal at 64 bits (it may not fit a signed integer
/// reply), lowercase hex for wider codes; `pending` is 0 or 1.
///
/// Plain: indexed entries by id, then pending ones in queue order; refused when there are
/// more than `imgscout.max-reply-rows`. With `CURSOR` (`0` to start): `[next cursor, rows]`,
/// at most `count` entries (default 1000), indexed and pending alike in id order, O(count)
/// a page; the cursor is `0` again at the end.
pub fn entries(ctx: &Context, args: &[RedisString]) -> RedisResult {
    check_arity(args, |n| n >= 2)?;
    let paged = cursor_options(&args[2..])?;
    let start = paged
        .map(|(text, count)| {
            let start = std::str::from_utf8(text)
                .map_err(|_| Error::InvalidCursor)
                .and_then(mvptree::parse_entries_cursor)
                .map_err(args::reply_error)?;
            Ok::<_, RedisError>((start, count))
        })
        .transpose()?;
    let (rows, next) = with_index(ctx, &args[1], |index| {
        let Some(index) = index else {
            return Ok((Vec::new(), start.map(|_| None)));
        };
        each_width!(AnyIndex, index, index => entry_rows(index, start))
    })?;
    worker::run(ctx, rows.len() >= OFFLOAD_ENTRY_ROWS, move || {
        let rows: Vec<RedisValue> = rows.into_iter().map(EntryRow::reply).collect();
        Ok(match next {
            Some(next) => page_reply(next.map(|id| id.to_string()), rows),
            None => RedisValue::Array(rows),
        })
    })
}

/// The rows of `imgscout.entries`: a page from `start` (and the id the next one starts at),
/// or every entry.
#[allow(clippy::type_complexity)]
fn entry_rows<C: Code>(
    index: &Index<C>,
    start: Option<(u64, usize)>,
) -> Result<(Vec<EntryRow>, Option<Option<u64>>), RedisError> {
    match start {
        Some((start, count)) => {
            let (page, next) = index.entries_page(start, count);
            Ok((page.iter().map(EntryRow::of).collect(), Some(next)))
        }
        None => {
            let max_rows = settings::max_reply_rows();
            if index.total_len() > max_rows {
                return Err(args::reply_error(Error::TooManyRows(max_rows)));
            }
            Ok((index.entries().map(|e| EntryRow::of(&e)).collect(), None))
        }
    }
}

fn title_of(index: &AnyIndex, id: u64) -> Option<Vec<u8>> {
    each_width!(AnyIndex, index, index => index.lookup(id).map(<[u8]>::to_vec))
}

/// `imgscout.lookup key id`: the title, or nil for an unknown id or a missing key.
pub fn lookup(ctx: &Context, args: &[RedisString]) -> RedisResult {
    check_arity(args, |n| n == 3)?;
    let id = args::id(args[2].as_slice())?;
    with_index(ctx, &args[1], |index| {
        Ok(index
            .and_then(|index| title_of(index, id))
            .map_or(RedisValue::Null, RedisValue::StringBuffer))
    })
}

/// `imgscout.mlookup key id [id ...]`: the title of each id (pending or indexed), nil where
/// there is none; one row per id asked, so the reply cap applies to the ids asked.
pub fn mlookup(ctx: &Context, args: &[RedisString]) -> RedisResult {
    check_arity(args, |n| n >= 3)?;
    let ids = args[2..]
        .iter()
        .map(|id| args::id(id.as_slice()))
        .collect::<Result<Vec<u64>, RedisError>>()?;
    let max_rows = settings::max_reply_rows();
    if ids.len() > max_rows {
        return Err(args::reply_error(Error::TooManyRows(max_rows)));
    }
    with_index(ctx, &args[1], |index| {
        let title = |id: u64| {
            index
                .and_then(|index| title_of(index, id))
                .map_or(RedisValue::Null, RedisValue::StringBuffer)
        };
        Ok(RedisValue::Array(ids.iter().map(|&id| title(id)).collect()))
    })
}

/// `imgscout.size key`: indexed entries (pending ones not counted); 0 for a missing key.
pub fn size(ctx: &Context, args: &[RedisString]) -> RedisResult {
    check_arity(args, |n| n == 2)?;
    with_index(ctx, &args[1], |index| {
        let len = index.map_or(
            0,
            |index| each_width!(AnyIndex, index, index => index.len()),
        );
        Ok(RedisValue::Integer(len as i64))
    })
}

/// `imgscout.del key id`: indexed or pending entries alike.
pub fn del(ctx: &Context, args: &[RedisString]) -> RedisResult {
    check_arity(args, |n| n == 3)?;
    let key = &args[1];
    let id = args::id(args[2].as_slice())?;
    with_index_mut(ctx, key, None, |index, _| {
        index
            .ok_or(Error::NoSuchId(id))
            .and_then(|index| each_width!(AnyIndex, index, index => index.delete(id)))
            .map_err(args::reply_error)
    })?;
    ctx.replicate_verbatim();
    delete_title_hash(ctx, key, id);
    notify(ctx, "imgscout.del", key);
    Ok(OK)
}

/// `imgscout.info key`: the core's figures as a map (a flat array under RESP2), in the core's
/// order. A missing key reports an empty index with the module's default threshold.
pub fn info(ctx: &Context, args: &[RedisString]) -> RedisResult {
    check_arity(args, |n| n == 2)?;
    let pairs = with_index(ctx, &args[1], |index| {
        Ok(match index {
            Some(index) => each_width!(AnyIndex, index, index => index.stats().to_pairs()),
            None => Index::<u64>::with_sync_threshold(settings::default_sync_threshold())
                .map_err(args::reply_error)?
                .stats()
                .to_pairs(),
        })
    })?;
    // Replied by hand: RedisValue's maps would reorder the names.
    raw::reply_with_map(ctx.ctx, pairs.len() as c_long);
    for (name, value) in pairs {
        raw::reply_with_string_buffer(ctx.ctx, name.as_ptr().cast::<c_char>(), name.len());
        match value {
            InfoValue::Int(n) => match i64::try_from(n) {
                Ok(n) => raw::reply_with_long_long(ctx.ctx, n),
                // next_id once every automatic id is used up (2^63): a RESP3 big number, a
                // bulk string under RESP2, never a wrapped negative integer.
                Err(_) => {
                    let digits = n.to_string();
                    raw::reply_with_big_number(
                        ctx.ctx,
                        digits.as_ptr().cast::<c_char>(),
                        digits.len(),
                    )
                }
            },
            InfoValue::Text(text) => {
                raw::reply_with_string_buffer(ctx.ctx, text.as_ptr().cast::<c_char>(), text.len())
            }
        };
    }
    Ok(RedisValue::NoReply)
}

/// `imgscout.config key [BITS 64|128|256] [SYNC_THRESHOLD n] [NEXT_ID n]`: creates an empty
/// index when the key is missing, of codes of `BITS` (64 when not given). On an existing key
/// `BITS` must name the width it has (widths are fixed at creation). All options are
/// validated before any is applied.
pub fn config(ctx: &Context, args: &[RedisString]) -> RedisResult {
    check_arity(args, |n| n >= 2)?;
    let key = &args[1];
    let mut bits = None;
    let mut threshold = None;
    let mut next_id = None;
    let mut options = args[2..].iter();
    while let Some(option) = options.next() {
        let option = option.as_slice();
        let value = options.next().ok_or_else(syntax_error)?.as_slice();
        if args::is_keyword(option, "BITS") {
            bits = Some(args::bits(value)?);
        } else if args::is_keyword(option, "SYNC_THRESHOLD") {
            threshold = Some(args::sync_threshold(value)?);
        } else if args::is_keyword(option, "NEXT_ID") {
            next_id = Some(args::next_id(value)?);
        } else {
            return Err(syntax_error());
        }
    }
    with_index_mut(ctx, key, Some(bits.unwrap_or(64)), |index, created| {
        let index = index.expect("created when missing");
        if let Some(asked) = bits.filter(|&asked| asked != index.bits()) {
            let held = index.bits();
            return Err(args::reply_error(Error::WidthFixed { asked, held }));
        }
        each_width!(AnyIndex, &mut *index, index => {
            if let Some(threshold) = threshold {
                index
                    .set_sync_threshold(threshold)
                    .map_err(args::reply_error)?;
            }
            if let Some(next_id) = next_id {
                index.advance_next_id(next_id).map_err(args::reply_error)?;
            }
        });
        if created {
            // Before the verbatim copy, so a replica starts from this threshold, not its own.
            replicate_creation(ctx, key, index);
        }
        Ok(())
    })?;
    ctx.replicate_verbatim();
    notify(ctx, "imgscout.config", key);
    Ok(OK)
}
