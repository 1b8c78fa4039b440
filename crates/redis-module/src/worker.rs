//! Heavy reads off the event loop: the calling client is blocked, a worker thread computes
//! the reply from a [`mvptree::Snapshot`] of the index, and the reply is sent on the event
//! loop when it is ready (RediSearch's pattern, with `RedisModule_BlockClient`).
//!
//! Concurrency rules: a worker only ever touches its snapshot, never the key, so a key
//! written, deleted, renamed, flushed or migrated meanwhile changes nothing for it (it answers
//! as the index was when the command arrived, as if the command had run then); writes are never
//! offloaded, so they keep their order and replicate as before. Where a client cannot be
//! blocked (inside MULTI/EXEC, Lua, or a replicated stream) the work runs on the event loop.
//! A client unblocked early (`CLIENT UNBLOCK`) or gone gets no reply; its worker finishes and
//! the result is dropped.

use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, OnceLock};

use redis_module::{raw, Context, ContextFlags, RedisError, RedisResult, RedisValue};

/// A reply computed away from the event loop.
struct Computed(Option<RedisResult>);

// SAFETY: a `RedisResult` is not `Send` only because `RedisValue` has variants that hold a
// `RedisString` (a pointer into the server's memory, bound to a context). The work run by
// [`run`] builds replies from owned data only (strings, buffers, integers, arrays), which are
// plain heap values allocated by the thread-safe Redis allocator.
unsafe impl Send for Computed {}

/// A blocked client handle, passed to the worker that unblocks it.
struct Blocked(*mut raw::RedisModuleBlockedClient);

// SAFETY: `RedisModule_UnblockClient` and `RedisModule_BlockedClientMeasureTimeEnd` are the
// only calls made with it off the event loop, and the module API allows both from any thread.
unsafe impl Send for Blocked {}

struct Job {
    client: Blocked,
    work: Box<dyn FnOnce() -> Computed + Send>,
}

static QUEUE: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();

/// Starts `threads` workers (none: every command runs on the event loop).
pub fn start(threads: usize) -> Result<(), String> {
    if threads == 0 {
        return Ok(());
    }
    let (sender, receiver) = mpsc::channel::<Job>();
    let receiver = std::sync::Arc::new(Mutex::new(receiver));
    for n in 0..threads {
        let receiver = receiver.clone();
        std::thread::Builder::new()
            .name(format!("imgscout-{n}"))
            .spawn(move || loop {
                let job = match receiver.lock() {
                    Ok(queue) => queue.recv(),
                    Err(poisoned) => poisoned.into_inner().recv(),
                };
                let Ok(job) = job else { return };
                finish(job);
            })
            .map_err(|e| format!("cannot start worker thread: {e}"))?;
    }
    QUEUE
        .set(Mutex::new(sender))
        .map_err(|_| "workers already started".to_string())
}

fn finish(job: Job) {
    let Job { client, work } = job;
    let computed = catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        Computed(Some(Err(RedisError::String(format!(
            "ERR internal error: {}",
            crate::panic_message(&*panic)
        )))))
    });
    let private = Box::into_raw(Box::new(computed)).cast::<c_void>();
    // SAFETY: the handle came from RedisModule_BlockClient and is unblocked exactly once;
    // Redis owns `private` from here and frees it through `free_private`.
    unsafe {
        if let Some(measure_end) = raw::RedisModule_BlockedClientMeasureTimeEnd {
            measure_end(client.0);
        }
        raw::RedisModule_UnblockClient.expect("RedisModule_UnblockClient")(client.0, private);
    }
}

/// Whether this command may block its client: not inside MULTI/EXEC or Lua (where the server
/// refuses to), not for the replication stream or the AOF (which have no client to wait).
fn can_block(ctx: &Context) -> bool {
    !ctx.get_flags().intersects(
        ContextFlags::MULTI
            | ContextFlags::LUA
            | ContextFlags::DENY_BLOCKING
            | ContextFlags::REPLICATED
            | ContextFlags::LOADING,
    )
}

/// Runs `work` on a worker with the client blocked when `heavy` (and blocking is allowed and
/// workers run), else right here. `work` must build its reply from owned data only (see
/// [`Computed`]).
pub fn run(
    ctx: &Context,
    heavy: bool,
    work: impl FnOnce() -> RedisResult + Send + 'static,
) -> RedisResult {
    let Some(queue) = QUEUE.get().filter(|_| heavy && can_block(ctx)) else {
        return work();
    };
    // SAFETY: a command context on the event loop; the callbacks live as long as the module.
    let client = unsafe {
        raw::RedisModule_BlockClient.expect("RedisModule_BlockClient")(
            ctx.ctx,
            Some(reply),
            Some(unblocked_early),
            Some(free_private),
            0,
        )
    };
    // SAFETY: the handle was just returned by RedisModule_BlockClient.
    unsafe {
        if let Some(measure_start) = raw::RedisModule_BlockedClientMeasureTimeStart {
            measure_start(client);
        }
    }
    let job = Job {
        client: Blocked(client),
        work: Box::new(move || Computed(Some(work()))),
    };
    let sent = match queue.lock() {
        Ok(sender) => sender.send(job),
        Err(poisoned) => poisoned.into_inner().send(job),
    };
    if let Err(mpsc::SendError(job)) = sent {
        // No worker left (cannot happen while the module is loaded): answer from here.
        finish(job);
    }
    Ok(RedisValue::NoReply)
}

/// Sends the reply a worker computed (on the event loop, once the client is unblocked).
unsafe extern "C" fn reply(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    let context = Context::new(ctx);
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the private data of a client unblocked by `finish` is a `Computed`.
        let computed = unsafe {
            raw::RedisModule_GetBlockedClientPrivateData.expect("GetBlockedClientPrivateData")(ctx)
                .cast::<Computed>()
                .as_mut()
        };
        computed
            .and_then(|c| c.0.take())
            .unwrap_or(Err(RedisError::Str(
                "ERR internal error: no reply computed",
            )))
    }))
    .unwrap_or_else(|panic| {
        Err(RedisError::String(format!(
            "ERR internal error: {}",
            crate::panic_message(&*panic)
        )))
    });
    context.reply(result) as c_int
}

/// `CLIENT UNBLOCK` (or a timeout) before the worker finished.
unsafe extern "C" fn unblocked_early(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    Context::new(ctx).reply(Err(RedisError::Str(
        "ERR unblocked before the answer was ready",
    ))) as c_int
}

unsafe extern "C" fn free_private(_ctx: *mut raw::RedisModuleCtx, private: *mut c_void) {
    if !private.is_null() {
        // SAFETY: `finish` made it with Box::into_raw, and Redis frees it once.
        drop(unsafe { Box::from_raw(private.cast::<Computed>()) });
    }
}
