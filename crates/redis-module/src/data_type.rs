//! The `imgscoutx` Redis data type: one `mvptree::Index` per key, of the key's code width
//! ([`AnyIndex`]), and the callbacks Redis uses to persist, rewrite, copy, measure, digest and
//! free it.
//!
//! Every callback that runs core code runs it under [`guarded`]: Redis calls them through
//! `extern "C"`, where an unwinding panic would abort the server.

use std::ffi::CStr;
use std::os::raw::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use mvptree::format::AnyIndex;
use mvptree::{text, Code, Index};
use redis_module::native_types::RedisType;
use redis_module::raw;

use crate::variadic::call_with_buffers;
use crate::width::each_width;

/// Bumped whenever the RDB layout of the value changes; `rdb_load` refuses other versions.
/// The payload is the core's serialized index, which names its own format: a 64-bit key is
/// written exactly as before wider codes existed (so an older module still loads it), a wider
/// one as the core's format 2 (which an older module refuses with a clear log line).
pub const ENCODING_VERSION: c_int = 1;

pub static INDEX_TYPE: RedisType = RedisType::new(
    "imgscoutx",
    ENCODING_VERSION,
    raw::RedisModuleTypeMethods {
        version: raw::REDISMODULE_TYPE_METHOD_VERSION as u64,
        rdb_load: Some(rdb_load),
        rdb_save: Some(rdb_save),
        aof_rewrite: Some(aof_rewrite),
        mem_usage: Some(mem_usage),
        digest: Some(digest),
        free: Some(free),
        aux_load: None,
        aux_save: None,
        aux_save_triggers: 0,
        free_effort: Some(free_effort),
        unlink: Some(unlink),
        copy: Some(copy),
        defrag: None,
        mem_usage2: None,
        free_effort2: None,
        unlink2: None,
        copy2: None,
        aux_save2: None,
    },
);

/// Runs a callback body, turning a panic into a logged warning and `fallback`: Redis runs
/// these through `extern "C"`, where an unwinding panic would abort the server.
fn guarded<T>(what: &str, fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        crate::log_warning(&format!(
            "imgscout: {what} failed: {}",
            crate::panic_message(&*panic)
        ));
        fallback
    })
}

/// # Safety
/// `value` must be a pointer this module created for the imgscout type (a leaked
/// `Box<AnyIndex>`), alive for `'a` and not written meanwhile: Redis hands each callback a
/// live value and runs no command on it during the callback.
unsafe fn index_ref<'a>(value: *const c_void) -> &'a AnyIndex {
    // SAFETY: the caller guarantees `value` is a live `Box<AnyIndex>` pointer.
    unsafe { &*value.cast::<AnyIndex>() }
}

/// # Safety
/// Called by Redis with a valid RDB handle and one of this type's values.
unsafe extern "C" fn rdb_save(rdb: *mut raw::RedisModuleIO, value: *mut c_void) {
    // SAFETY: Redis passes a value of this type.
    let index = unsafe { index_ref(value) };
    let buffer = guarded("rdb_save", Vec::new(), || {
        let mut buffer = Vec::new();
        if let Err(e) = each_width!(AnyIndex, index, index => index.write_to(&mut buffer)) {
            // Writing to memory cannot fail short of a bug; the empty buffer then fails to
            // load loudly instead of loading something half-written.
            crate::log_warning(&format!("imgscout: serializing an index failed: {e}"));
            buffer.clear();
        }
        buffer
    });
    raw::save_slice(rdb, &buffer);
}

/// # Safety
/// Called by Redis with a valid RDB handle.
unsafe extern "C" fn rdb_load(rdb: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    if encver != ENCODING_VERSION {
        crate::log_warning(&format!(
            "imgscout: cannot load encoding version {encver} (this module reads {ENCODING_VERSION})"
        ));
        return std::ptr::null_mut();
    }
    // With REDISMODULE_OPTIONS_HANDLE_IO_ERRORS a short read is reported here instead of
    // aborting the server, so RESTORE of a truncated payload only fails that command.
    let Ok(buffer) = raw::load_string_buffer(rdb) else {
        crate::log_warning("imgscout: short read loading an index");
        return std::ptr::null_mut();
    };
    guarded(
        "rdb_load",
        std::ptr::null_mut(),
        || match AnyIndex::read_from(buffer.as_ref()) {
            Ok(index) => Box::into_raw(Box::new(index)).cast::<c_void>(),
            Err(e) => {
                crate::log_warning(&format!("imgscout: rejecting stored index: {e}"));
                std::ptr::null_mut()
            }
        },
    )
}

/// Emits one command into the rewritten AOF. Arguments are binary-safe buffers.
///
/// # Safety
/// `aof` must be the handle Redis passed to the running `aof_rewrite` callback.
unsafe fn emit(aof: *mut raw::RedisModuleIO, command: &CStr, args: &[&[u8]]) {
    // SAFETY: the API table is filled in at load and not written afterwards; `aof` is live
    // for the callback, and the command name and argument buffers outlive the call, which
    // copies them.
    unsafe {
        let emit_aof = raw::RedisModule_EmitAOF.expect("RedisModule_EmitAOF");
        call_with_buffers!(emit_aof, (aof, command.as_ptr()), args);
    }
}

/// Rebuilds exactly the same state on replay: threshold first (so automatic syncs happen at
/// the same points), indexed entries then SYNC, then the pending queue in its order, then the
/// id counter (which may be past every id still present). A wide key's first command names
/// its width. Hashes are written as [`text::format_code`] does (decimal at 64 bits, as the old
/// module's AOF files hold), which the hash grammar always reads back as the same code.
///
/// # Safety
/// Called by Redis with a valid AOF handle, the key's name and one of this type's values.
unsafe extern "C" fn aof_rewrite(
    aof: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
    value: *mut c_void,
) {
    // SAFETY: Redis passes a value of this type.
    let index = unsafe { index_ref(value) };
    let mut key_len = 0;
    // SAFETY: `key` is a live module string; the pointer it returns stays valid (and the
    // bytes unchanged) for this callback.
    let key = unsafe {
        let key_ptr =
            raw::RedisModule_StringPtrLen.expect("RedisModule_StringPtrLen")(key, &mut key_len);
        std::slice::from_raw_parts(key_ptr.cast::<u8>(), key_len)
    };
    guarded("aof_rewrite", (), || {
        rewrite_commands(key, index, |command, args| {
            // SAFETY: `aof` is this callback's handle.
            unsafe { emit(aof, command, args) }
        })
    });
}

/// The commands of [`aof_rewrite`] for `index`, in replay order, each with its arguments
/// after the key.
fn rewrite_commands(key: &[u8], index: &AnyIndex, mut emit: impl FnMut(&CStr, &[&[u8]])) {
    let creation = crate::commands::creation_options(index);
    let mut config: Vec<&[u8]> = vec![key];
    config.extend(creation.iter().map(String::as_bytes));
    emit(c"imgscout.config", &config);
    each_width!(AnyIndex, index, index => rewrite_entries(key, index, &mut emit));
}

fn rewrite_entries<C: Code>(key: &[u8], index: &Index<C>, emit: &mut impl FnMut(&CStr, &[&[u8]])) {
    let mut synced = false;
    for entry in index.entries() {
        if entry.pending && !synced {
            emit(c"imgscout.sync", &[key]);
            synced = true;
        }
        let hash = text::format_code(entry.hash);
        let id = entry.id.to_string();
        emit(
            c"imgscout.add",
            &[key, hash.as_bytes(), entry.title, id.as_bytes()],
        );
    }
    if !synced {
        emit(c"imgscout.sync", &[key]);
    }
    let next_id = index.next_id().to_string();
    emit(c"imgscout.config", &[key, b"NEXT_ID", next_id.as_bytes()]);
}

/// # Safety
/// Called by Redis with one of this type's values.
unsafe extern "C" fn mem_usage(value: *const c_void) -> usize {
    // SAFETY: Redis passes a value of this type.
    let index = unsafe { index_ref(value) };
    guarded("mem_usage", 0, || {
        std::mem::size_of::<Box<AnyIndex>>()
            + each_width!(AnyIndex, index, index => index.memory_bytes())
    })
}

/// Digests the logical content (not the layout, which depends on insertion history and on
/// when background builds finish), so `DEBUG DIGEST-VALUE` agrees between a master and its
/// replicas: the core's one-pass content fingerprint. Mixing every field into the digest
/// separately cost a SHA-1 per field, seconds at a million entries on the event loop.
///
/// # Safety
/// Called by Redis with a valid digest handle and one of this type's values.
unsafe extern "C" fn digest(md: *mut raw::RedisModuleDigest, value: *mut c_void) {
    // SAFETY: Redis passes a value of this type.
    let index = unsafe { index_ref(value) };
    let parts = guarded(
        "digest",
        [0; 4],
        || each_width!(AnyIndex, index, index => index.content_digest()),
    );
    // SAFETY: the API table is filled in at load and not written afterwards; `md` is live for
    // this callback.
    unsafe {
        let add_long = raw::RedisModule_DigestAddLongLong.expect("DigestAddLongLong");
        for part in parts {
            add_long(md, part as i64);
        }
        raw::RedisModule_DigestEndSequence.expect("DigestEndSequence")(md);
    }
}

/// # Safety
/// Called by Redis once per value, with a pointer this module made by `Box::into_raw`.
unsafe extern "C" fn free(value: *mut c_void) {
    // SAFETY: the value came from `Box::into_raw` and Redis frees it exactly once.
    drop(unsafe { Box::from_raw(value.cast::<AnyIndex>()) });
}

/// Redis frees values whose effort exceeds `lazyfree-lazy-user-del`'s cutoff (64) in a
/// background thread; an index's free cost grows with its entries.
///
/// # Safety
/// Called by Redis with one of this type's values.
unsafe extern "C" fn free_effort(_key: *mut raw::RedisModuleString, value: *const c_void) -> usize {
    // SAFETY: Redis passes a value of this type.
    let index = unsafe { index_ref(value) };
    each_width!(AnyIndex, index, index => index.len() + index.pending_len())
}

/// Called when the key leaves the keyspace, before a possibly asynchronous `free`. The index
/// holds no references to Redis objects, so there is nothing to release early.
///
/// # Safety
/// Touches nothing.
unsafe extern "C" fn unlink(_key: *mut raw::RedisModuleString, _value: *const c_void) {}

/// # Safety
/// Called by Redis with one of this type's values.
unsafe extern "C" fn copy(
    _from_key: *mut raw::RedisModuleString,
    _to_key: *mut raw::RedisModuleString,
    value: *const c_void,
) -> *mut c_void {
    // SAFETY: Redis passes a value of this type.
    let index = unsafe { index_ref(value) };
    guarded("copy", std::ptr::null_mut(), || {
        Box::into_raw(Box::new(index.clone())).cast::<c_void>()
    })
}
