//! The command table: names, flags, arity and key specs.
//!
//! Registered with `RedisModule_CreateCommand` + `RedisModule_SetCommandInfo` rather than the
//! `redis_module!` list so that each command gets a key spec naming argument 1 as its only key
//! (the old module declared every argument a key, which broke Redis Cluster routing) and an
//! arity that Redis itself checks.

use std::ffi::CString;
use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};

use redis_module::commands::{get_redis_key_spec, BeginSearch, FindKeys, KeySpec, KeySpecFlags};
use redis_module::{raw, Context, RedisError, RedisResult, RedisString};

use crate::commands;

type Handler = fn(&Context, &[RedisString]) -> RedisResult;

struct Command {
    name: &'static str,
    flags: &'static str,
    /// Redis convention: N means exactly N arguments (command name included), -N at least N.
    arity: c_int,
    /// `KeySpecFlags` bits (the type is not `Copy`).
    key_flags: u32,
    summary: &'static str,
    callback: raw::RedisModuleCmdFunc,
}

/// Calls the handler with a panic guard: a bug replies with an error instead of unwinding
/// into Redis (which would abort the server).
fn dispatch(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
    handler: Handler,
) -> c_int {
    let context = Context::new(ctx);
    let args = redis_module::decode_args(ctx, argv, argc);
    let result =
        catch_unwind(AssertUnwindSafe(|| handler(&context, &args))).unwrap_or_else(|panic| {
            let message = crate::panic_message(&*panic);
            context.log_warning(&format!("imgscout: command panicked: {message}"));
            Err(RedisError::String(format!("ERR internal error: {message}")))
        });
    context.reply(result) as c_int
}

macro_rules! callback {
    ($handler:path) => {{
        extern "C" fn callback(
            ctx: *mut raw::RedisModuleCtx,
            argv: *mut *mut raw::RedisModuleString,
            argc: c_int,
        ) -> c_int {
            dispatch(ctx, argv, argc, $handler)
        }
        Some(callback as _)
    }};
}

fn table() -> Vec<Command> {
    let read = (KeySpecFlags::READ_ONLY | KeySpecFlags::ACCESS).bits();
    let read_metadata = KeySpecFlags::READ_ONLY.bits();
    let insert = (KeySpecFlags::READ_WRITE | KeySpecFlags::INSERT).bits();
    let update = (KeySpecFlags::READ_WRITE | KeySpecFlags::UPDATE).bits();
    let delete = (KeySpecFlags::READ_WRITE | KeySpecFlags::DELETE).bits();
    vec![
        Command {
            name: "imgscout.add",
            flags: "write deny-oom",
            arity: -4,
            key_flags: insert,
            summary: "Adds a hash with a title (and optionally an id) to the pending queue; returns the id.",
            callback: callback!(commands::add),
        },
        Command {
            name: "imgscout.madd",
            flags: "write deny-oom",
            arity: -4,
            key_flags: insert,
            summary: "Adds several hash/title pairs (or, after IDS, hash/title/id triples), all or none; returns their ids.",
            callback: callback!(commands::madd),
        },
        Command {
            name: "imgscout.sync",
            flags: "write deny-oom",
            arity: 2,
            key_flags: update,
            summary: "Moves the pending queue into the searchable index.",
            callback: callback!(commands::sync),
        },
        Command {
            name: "imgscout.query",
            flags: "readonly",
            arity: -4,
            key_flags: read,
            summary: "Entries within a Hamming radius, sorted by distance then id.",
            callback: callback!(commands::query),
        },
        Command {
            name: "imgscout.knn",
            flags: "readonly",
            arity: 4,
            key_flags: read,
            summary: "The k nearest entries, sorted by distance then id.",
            callback: callback!(commands::knn),
        },
        Command {
            name: "imgscout.pairs",
            flags: "readonly",
            arity: -3,
            key_flags: read,
            summary: "Every pair of indexed entries within a Hamming radius (the self-join), whole or in cursor pages.",
            callback: callback!(commands::pairs),
        },
        Command {
            name: "imgscout.entries",
            flags: "readonly",
            arity: -2,
            key_flags: read,
            summary: "Every entry with its id, hash, title and pending flag, whole or in cursor pages.",
            callback: callback!(commands::entries),
        },
        Command {
            name: "imgscout.lookup",
            flags: "readonly fast",
            arity: 3,
            key_flags: read,
            summary: "The title of an id, or nil.",
            callback: callback!(commands::lookup),
        },
        Command {
            name: "imgscout.mquery",
            flags: "readonly",
            arity: -4,
            key_flags: read,
            summary: "A range query per hash, in one reply of flat [id, distance, ...] rows.",
            callback: callback!(commands::mquery),
        },
        Command {
            name: "imgscout.mknn",
            flags: "readonly",
            arity: -4,
            key_flags: read,
            summary: "The k nearest entries of each hash, in one reply of flat [id, distance, ...] rows.",
            callback: callback!(commands::mknn),
        },
        Command {
            name: "imgscout.mlookup",
            flags: "readonly fast",
            arity: -3,
            key_flags: read,
            summary: "The title of each id, or nil.",
            callback: callback!(commands::mlookup),
        },
        Command {
            name: "imgscout.size",
            flags: "readonly fast",
            arity: 2,
            key_flags: read_metadata,
            summary: "Number of indexed (not pending) entries.",
            callback: callback!(commands::size),
        },
        Command {
            name: "imgscout.del",
            flags: "write",
            arity: 3,
            key_flags: delete,
            summary: "Deletes an indexed or pending entry.",
            callback: callback!(commands::del),
        },
        Command {
            name: "imgscout.info",
            flags: "readonly",
            arity: 2,
            key_flags: read_metadata,
            summary: "Figures about the index: entries, pending, next id, threshold, memory.",
            callback: callback!(commands::info),
        },
        Command {
            name: "imgscout.config",
            flags: "write deny-oom",
            arity: -2,
            key_flags: update,
            summary: "Sets the per-key sync threshold and/or advances the id counter.",
            callback: callback!(commands::config),
        },
    ]
}

static COMMAND_INFO_VERSION: raw::RedisModuleCommandInfoVersion =
    raw::RedisModuleCommandInfoVersion {
        version: 1,
        sizeof_historyentry: std::mem::size_of::<raw::RedisModuleCommandHistoryEntry>(),
        sizeof_keyspec: std::mem::size_of::<raw::RedisModuleCommandKeySpec>(),
        sizeof_arg: std::mem::size_of::<raw::RedisModuleCommandArg>(),
    };

fn register(ctx: &Context, command: &Command) -> Result<(), String> {
    let name = CString::new(command.name).expect("static name");
    let flags = CString::new(command.flags).expect("static flags");
    let summary = CString::new(command.summary).expect("static summary");
    // SAFETY: plain calls into the module API with NUL-terminated strings that outlive them;
    // Redis copies the command info (key specs included) before SetCommandInfo returns.
    unsafe {
        let create = raw::RedisModule_CreateCommand.ok_or("no RedisModule_CreateCommand")?;
        if create(
            ctx.ctx,
            name.as_ptr(),
            command.callback,
            flags.as_ptr(),
            0,
            0,
            0,
        ) != raw::REDISMODULE_OK as c_int
        {
            return Err(format!("cannot create command {}", command.name));
        }
        let handle =
            raw::RedisModule_GetCommand.ok_or("no RedisModule_GetCommand")?(ctx.ctx, name.as_ptr());
        if handle.is_null() {
            return Err(format!(
                "cannot find command {} after creating it",
                command.name
            ));
        }
        let key_specs = get_redis_key_spec(vec![KeySpec::new(
            None,
            KeySpecFlags::from_bits_truncate(command.key_flags),
            BeginSearch::new_index(1),
            FindKeys::new_range(0, 1, 0),
        )]);
        let info = raw::RedisModuleCommandInfo {
            version: &COMMAND_INFO_VERSION,
            summary: summary.as_ptr(),
            complexity: std::ptr::null(),
            since: std::ptr::null(),
            history: std::ptr::null_mut(),
            tips: std::ptr::null(),
            arity: command.arity,
            key_specs: key_specs.as_ptr().cast_mut(),
            args: std::ptr::null_mut(),
        };
        // ACL categories: `+@read` / `-@write` users need them. Redis 7.2+ and Valkey have
        // the call; on 7.0 module commands are in no category (grant read access by key
        // permission, `%R~*`, there).
        if let Some(set_categories) = raw::RedisModule_SetCommandACLCategories {
            let category = if command.flags.split(' ').any(|f| f == "write") {
                c"write"
            } else {
                c"read"
            };
            if set_categories(handle, category.as_ptr()) != raw::REDISMODULE_OK as c_int {
                return Err(format!("cannot set the ACL category of {}", command.name));
            }
        }
        let set_info = raw::RedisModule_SetCommandInfo.ok_or("no RedisModule_SetCommandInfo")?;
        if set_info(handle, &info) != raw::REDISMODULE_OK as c_int {
            return Err(format!("cannot set command info of {}", command.name));
        }
    }
    Ok(())
}

pub fn register_all(ctx: &Context) -> Result<(), String> {
    table()
        .iter()
        .try_for_each(|command| register(ctx, command))
}
