//! Run-time SIMD dispatch: the instruction-set level this CPU runs, and one switch to run a lower one.
//!
//! Four levels: [`Level::Scalar`] (portable Rust only), [`Level::Avx2`] (AVX2 + FMA + POPCNT: Haswell, Zen 1-3),
//! [`Level::Avx2Vnni`] (that and AVX-VNNI: Alder Lake and later client parts) and [`Level::Avx512`] (AVX-512
//! F/BW/VL/DQ). Kernels with a variant for an extra feature (AVX512-BF16, VPOPCNTDQ, AMX) run it only when the active
//! level reaches AVX-512 *and* the CPU has the feature; AVX-VNNI variants run from [`Level::Avx2Vnni`] up on CPUs
//! that have it (Sapphire Rapids does, Zen 4 and Skylake-SP do not).
//!
//! The active level is the detected one, capped by a ceiling: `SENTRS_SIMD` in the environment (`scalar`, `avx2`,
//! `avx2_vnni` or `avx512`; read once, at first use) or [`set_ceiling`] (tests and benchmarks). A ceiling above what the CPU has changes
//! nothing, so every path a machine supports can be checked on it. Kernels that take a `Level` argument use it
//! as given (the caller checks [`supports`]); the others read [`active`].
//!
//! The `gemm` crate behind the GEMMs of [`crate::similarity`] dispatches on its own; where a kernel must honour a
//! forced level it uses its own micro-kernels instead (see [`crate::topk::fused`]).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

/// An instruction-set level, ordered from the narrowest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Portable code only (what the compiler emits for the baseline target).
    Scalar,
    /// AVX2, FMA and POPCNT (Haswell, Zen 1 and later).
    Avx2,
    /// [`Level::Avx2`] and AVX-VNNI (Alder Lake, Sapphire Rapids and later).
    Avx2Vnni,
    /// AVX-512 F, BW, VL and DQ (Skylake-SP, Ice Lake, Sapphire Rapids, Zen 4 and later).
    Avx512,
}

impl Level {
    /// Every level, narrowest first.
    pub const ALL: [Level; 4] = [Level::Scalar, Level::Avx2, Level::Avx2Vnni, Level::Avx512];

    /// The level's name: `scalar`, `avx2`, `avx2_vnni` or `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx2Vnni => "avx2_vnni",
            Level::Avx512 => "avx512",
        }
    }

    /// The level named `name` (case-insensitive, surrounding spaces ignored).
    pub fn parse(name: &str) -> Option<Level> {
        let name = name.trim().to_ascii_lowercase();
        Level::ALL.into_iter().find(|l| l.name() == name)
    }

    fn from_u8(v: u8) -> Option<Level> {
        Level::ALL.get(usize::from(v)).copied()
    }
}

/// The widest level this CPU (and OS) runs.
pub fn detected() -> Level {
    static DETECTED: OnceLock<Level> = OnceLock::new();
    *DETECTED.get_or_init(detect)
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Level {
    use std::arch::is_x86_feature_detected as has;
    if has!("avx512f")
        && has!("avx512bw")
        && has!("avx512vl")
        && has!("avx512dq")
        && has!("fma")
        && has!("popcnt")
    {
        Level::Avx512
    } else if has!("avx2") && has!("fma") && has!("popcnt") && has!("avxvnni") {
        Level::Avx2Vnni
    } else if has!("avx2") && has!("fma") && has!("popcnt") {
        Level::Avx2
    } else {
        Level::Scalar
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Level {
    Level::Scalar
}

/// No ceiling set through [`set_ceiling`]: the environment's (or none) applies.
const UNSET: u8 = u8::MAX;
static CEILING: AtomicU8 = AtomicU8::new(UNSET);

/// The ceiling from `SENTRS_SIMD`, read once; an unknown value means no ceiling.
fn env_ceiling() -> Option<Level> {
    static ENV: OnceLock<Option<Level>> = OnceLock::new();
    *ENV.get_or_init(|| {
        std::env::var("SENTRS_SIMD")
            .ok()
            .and_then(|v| Level::parse(&v))
    })
}

/// The ceiling in force: the one set by [`set_ceiling`], else `SENTRS_SIMD`'s, else none.
pub fn ceiling() -> Option<Level> {
    match CEILING.load(Ordering::Relaxed) {
        UNSET => env_ceiling(),
        v => Level::from_u8(v),
    }
}

/// Caps the level kernels run at (`None`: back to `SENTRS_SIMD`, or no cap). Process-wide.
pub fn set_ceiling(level: Option<Level>) {
    CEILING.store(level.map_or(UNSET, |l| l as u8), Ordering::Relaxed);
}

/// The level kernels run at now: the detected one, capped by the ceiling.
pub fn active() -> Level {
    match ceiling() {
        Some(cap) => cap.min(detected()),
        None => detected(),
    }
}

/// Whether this CPU runs `level` (an AVX-512 CPU without AVX-VNNI does not run [`Level::Avx2Vnni`]).
pub fn supports(level: Level) -> bool {
    level <= detected() && (level != Level::Avx2Vnni || has_avx_vnni())
}

/// Every level this CPU runs, narrowest first.
pub fn supported_levels() -> Vec<Level> {
    Level::ALL.into_iter().filter(|&l| supports(l)).collect()
}

/// Whether the CPU has AVX-VNNI (the VEX-encoded `vpdpwssd`/`vpdpbusd` on 256-bit registers).
pub fn has_avx_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static VNNI: OnceLock<bool> = OnceLock::new();
        *VNNI.get_or_init(|| std::arch::is_x86_feature_detected!("avxvnni"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The CPU features that matter to sentrs' kernels, as `name=yes/no` pairs, for benchmark and log output.
pub fn feature_report() -> Vec<(&'static str, bool)> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        vec![
            ("avx2", has!("avx2")),
            ("fma", has!("fma")),
            ("avx_vnni", has!("avxvnni")),
            ("avx512f", has!("avx512f")),
            ("avx512bw", has!("avx512bw")),
            ("avx512_vnni", has!("avx512vnni")),
            ("avx512_bf16", has!("avx512bf16")),
            ("avx512_vpopcntdq", has!("avx512vpopcntdq")),
            ("amx", crate::maxsim::amx::cpu_has_amx()),
        ]
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order() {
        for level in Level::ALL {
            assert_eq!(Level::parse(level.name()), Some(level));
        }
        assert_eq!(Level::parse(" AVX2 "), Some(Level::Avx2));
        assert_eq!(Level::parse("sse4"), None);
        assert!(
            Level::Scalar < Level::Avx2
                && Level::Avx2 < Level::Avx2Vnni
                && Level::Avx2Vnni < Level::Avx512
        );
        assert!(supports(Level::Scalar));
        assert_eq!(supported_levels().last().copied(), Some(detected()));
        assert_eq!(
            supports(Level::Avx2Vnni),
            detected() >= Level::Avx2Vnni && has_avx_vnni()
        );
    }
}
