//! Heavy reads off the event loop: the calling client is blocked, a worker thread computes
//! the answer from a [`mvptree::Snapshot`] of the index and writes the reply into the blocked
//! client's buffer, which the server hands to the client when it is unblocked (RediSearch's
//! pattern, with `RedisModule_BlockClient` and a thread-safe context).
//!
//! Concurrency rules: a worker only ever touches its snapshot, never the key, so a key
//! written, deleted, renamed, flushed or migrated meanwhile changes nothing for it (it answers
//! as the index was when the command arrived, as if the command had run then); writes are never
//! offloaded, so they keep their order and replicate as before. Where a client cannot be
//! blocked (inside MULTI/EXEC, Lua, or a replicated stream) the work runs on the event loop.
//! A client unblocked early (`CLIENT UNBLOCK`) or gone gets no reply; its worker finishes and
//! the result is dropped.

use std::ffi::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, OnceLock};

use redis_module::{raw, Context, ContextFlags, RedisError, RedisResult, RedisValue};

/// A blocked client handle, passed to the worker that answers it.
struct Blocked(*mut raw::RedisModuleBlockedClient);

// SAFETY: off the event loop the handle is only used for the calls the module API allows
// from any thread: RedisModule_GetThreadSafeContext, the reply calls on that context,
// RedisModule_BlockedClientMeasureTimeEnd and RedisModule_UnblockClient.
unsafe impl Send for Blocked {}

enum Job {
    /// A read whose reply goes to a blocked client.
    Reply {
        client: Blocked,
        work: Box<dyn FnOnce() -> RedisResult + Send>,
    },
    /// Work with no client waiting (the deferred builds of a write).
    Detached(Box<dyn FnOnce() + Send>),
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

/// Computes the reply and writes it on the worker, into the blocked client's thread-safe
/// context: the server moves the finished reply to the client when it is unblocked, so the
/// event loop never spends time on the rows (a 100,000-row reply written there held it for
/// about 100 ms).
fn finish(job: Job) {
    let (client, work) = match job {
        Job::Reply { client, work } => (client, work),
        Job::Detached(work) => {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(work)) {
                crate::log_warning(&format!(
                    "imgscout: background work failed: {}",
                    crate::panic_message(&*panic)
                ));
            }
            return;
        }
    };
    let result = catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        Err(RedisError::String(format!(
            "ERR internal error: {}",
            crate::panic_message(&*panic)
        )))
    });
    // SAFETY: the handle came from RedisModule_BlockClient and is unblocked exactly once,
    // after its thread-safe context (which writes into the blocked client's reply buffer)
    // is freed; reply calls on such a context need no lock.
    unsafe {
        let ctx = raw::RedisModule_GetThreadSafeContext.expect("GetThreadSafeContext")(client.0);
        Context::new(ctx).reply(result);
        raw::RedisModule_FreeThreadSafeContext.expect("FreeThreadSafeContext")(ctx);
        if let Some(measure_end) = raw::RedisModule_BlockedClientMeasureTimeEnd {
            measure_end(client.0);
        }
        raw::RedisModule_UnblockClient.expect("RedisModule_UnblockClient")(
            client.0,
            std::ptr::null_mut(),
        );
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
/// workers run), else right here.
pub fn run(
    ctx: &Context,
    heavy: bool,
    work: impl FnOnce() -> RedisResult + Send + 'static,
) -> RedisResult {
    let Some(queue) = QUEUE.get().filter(|_| heavy && can_block(ctx)) else {
        return work();
    };
    // SAFETY: a command context on the event loop; the callback lives as long as the module.
    // No reply callback: the worker writes the reply itself (see `finish`).
    let client = unsafe {
        raw::RedisModule_BlockClient.expect("RedisModule_BlockClient")(
            ctx.ctx,
            None,
            Some(unblocked_early),
            None,
            0,
        )
    };
    // SAFETY: the handle was just returned by RedisModule_BlockClient.
    unsafe {
        if let Some(measure_start) = raw::RedisModule_BlockedClientMeasureTimeStart {
            measure_start(client);
        }
    }
    let job = Job::Reply {
        client: Blocked(client),
        work: Box::new(work),
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

/// Runs `work` on a worker with no client waiting for it; here when there are no workers.
pub fn spawn(work: impl FnOnce() + Send + 'static) {
    let job = Job::Detached(Box::new(work));
    let Some(queue) = QUEUE.get() else {
        finish(job);
        return;
    };
    let sent = match queue.lock() {
        Ok(sender) => sender.send(job),
        Err(poisoned) => poisoned.into_inner().send(job),
    };
    if let Err(mpsc::SendError(job)) = sent {
        finish(job);
    }
}

/// `CLIENT UNBLOCK` (or a timeout) before the worker finished: the client gets this error,
/// and the reply the worker writes later is dropped by the server.
///
/// # Safety
/// Called by Redis on the event loop with the blocked client's context.
unsafe extern "C" fn unblocked_early(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    Context::new(ctx).reply(Err(RedisError::Str(
        "ERR unblocked before the answer was ready",
    ))) as c_int
}
