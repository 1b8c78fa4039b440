//! Which mask kernel runs: detected once per process, or forced by `IMGSCOUT_KERNEL`.

use std::sync::OnceLock;

/// An implementation of the mask kernel (see [`super::hit_masks_with`]), by instruction set.
///
/// Every kernel gives the same masks; they differ only in speed. On targets other than x86-64
/// only [`Kernel::Portable`] exists at run time (the others report themselves unsupported).
/// aarch64 builds compile the portable kernel only; they are not built or measured here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Plain Rust the compiler vectorizes for the build's baseline (SSE4.2 + POPCNT on the
    /// x86-64-v2 builds imgscout ships).
    Portable,
    /// Four hashes per instruction: a nibble-lookup popcount (`vpshufb` + `vpsadbw`).
    Avx2,
    /// Eight hashes per instruction with AVX-512's vector popcount (`vpopcntq`).
    Avx512,
}

/// The environment variable that forces a kernel: `portable`, `avx2` or `avx512`.
pub const KERNEL_ENV: &str = "IMGSCOUT_KERNEL";

impl Kernel {
    /// Every kernel, slowest first.
    pub const ALL: [Kernel; 3] = [Kernel::Portable, Kernel::Avx2, Kernel::Avx512];

    /// The name `IMGSCOUT_KERNEL` and `info` use.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Portable => "portable",
            Kernel::Avx2 => "avx2",
            Kernel::Avx512 => "avx512",
        }
    }

    /// The kernel named `name` (as [`Kernel::name`] spells it), if any.
    pub fn from_name(name: &str) -> Option<Kernel> {
        Kernel::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether this CPU has the instructions the kernel is compiled for: calling an
    /// unsupported kernel would be undefined behaviour, so dispatch checks this.
    pub fn is_supported(self) -> bool {
        match self {
            Kernel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => std::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512vpopcntdq")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::Avx2 | Kernel::Avx512 => false,
        }
    }

    /// The fastest kernel this CPU supports.
    pub fn best_supported() -> Kernel {
        Kernel::ALL
            .into_iter()
            .rev()
            .find(|k| k.is_supported())
            .unwrap_or(Kernel::Portable)
    }

    /// The kernel to run when `requested` is asked for: it if supported, else the best
    /// supported one below it (so `avx512` on an AVX2-only CPU runs `avx2`), else portable.
    pub fn resolve(requested: Option<Kernel>) -> Kernel {
        match requested {
            None => Kernel::best_supported(),
            Some(k) => Kernel::ALL
                .into_iter()
                .rev()
                .filter(|c| *c as u8 <= k as u8)
                .find(|c| c.is_supported())
                .unwrap_or(Kernel::Portable),
        }
    }
}

/// The kernel every scan of this process runs, fixed at first use: `IMGSCOUT_KERNEL` if set
/// to a kernel name and supported by this CPU, else the best supported one.
///
/// A forced kernel the CPU lacks falls back (see [`Kernel::resolve`]) rather than fail: this
/// function, and the `kernel` figure of `info`, report what actually runs. An unknown value
/// is ignored. Fixed once so that plans, which the kernel prices, stay the same all process
/// long.
pub fn kernel() -> Kernel {
    static KERNEL: OnceLock<Kernel> = OnceLock::new();
    *KERNEL.get_or_init(|| {
        let requested = std::env::var(KERNEL_ENV)
            .ok()
            .and_then(|v| Kernel::from_name(&v));
        Kernel::resolve(requested)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in Kernel::ALL {
            assert_eq!(Kernel::from_name(k.name()), Some(k));
        }
        assert_eq!(Kernel::from_name(" AVX2 "), Some(Kernel::Avx2));
        assert_eq!(Kernel::from_name("sse"), None);
    }

    #[test]
    fn resolution_never_picks_an_unsupported_kernel() {
        for requested in Kernel::ALL.map(Some).into_iter().chain([None]) {
            let k = Kernel::resolve(requested);
            assert!(k.is_supported(), "{requested:?} -> {k:?}");
            if let Some(r) = requested {
                assert!(k as u8 <= r as u8);
                assert_eq!(r.is_supported(), k == r);
            }
        }
        assert!(kernel().is_supported());
        assert_eq!(Kernel::resolve(None), Kernel::best_supported());
    }
}
