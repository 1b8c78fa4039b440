//! Calls to the module API's variadic, format-string functions (`RedisModule_Replicate`,
//! `RedisModule_EmitAOF`) with binary-safe buffers: Rust cannot build a C variadic call from a
//! slice, so each argument count is spelled out once, here.

/// `$function($($lead,)* "b..." format, ptr0, len0, ptr1, len1, ...)` for 1 to 5 buffers (a wide key's creation, `imgscout.config key BITS n SYNC_THRESHOLD n`,
/// is the longest) in
/// `$buffers` (a `&[&[u8]]`). Must be used inside `unsafe`: the buffers must outlive the call.
macro_rules! call_with_buffers {
    ($function:expr, ($($lead:expr),*), $buffers:expr) => {{
        let buffers: &[&[u8]] = $buffers;
        let at = |i: usize| buffers[i].as_ptr().cast::<std::os::raw::c_char>();
        let len = |i: usize| buffers[i].len();
        match buffers.len() {
            1 => $function($($lead,)* c"b".as_ptr(), at(0), len(0)),
            2 => $function($($lead,)* c"bb".as_ptr(), at(0), len(0), at(1), len(1)),
            3 => $function(
                $($lead,)* c"bbb".as_ptr(), at(0), len(0), at(1), len(1), at(2), len(2)
            ),
            4 => $function(
                $($lead,)* c"bbbb".as_ptr(),
                at(0), len(0), at(1), len(1), at(2), len(2), at(3), len(3)
            ),
            5 => $function(
                $($lead,)* c"bbbbb".as_ptr(),
                at(0), len(0), at(1), len(1), at(2), len(2), at(3), len(3), at(4), len(4)
            ),
            n => unreachable!("no imgscout command is sent with {n} arguments"),
        }
    }};
}

pub(crate) use call_with_buffers;
