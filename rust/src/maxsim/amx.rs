//! MaxSim with the bf16 matrix unit of Intel AMX, exact: bf16 scores pick candidate tokens, fp32 scores them.
//!
//! A block of query tokens times a block of document tokens is computed with `tdpbf16ps` (bf16 inputs, fp32
//! accumulation) into a score buffer. Rounding to bf16 moves each input by at most 2^-9 of its magnitude, so a
//! bf16 score is within `EPS * |q| * |d|` of the exact dot product (Cauchy-Schwarz bounds the sum of
//! `|q_k d_k|`; `EPS` also covers the fp32 accumulation). For each query token and document, every token whose
//! bf16 score is within twice that bound of the best bf16 score is rescored in fp32 and the largest fp32 score is
//! the maximum: no token outside this set can beat it. Usually the set is one token.
//!
//! The tiles are used through inline assembly (the AMX intrinsics are not stable in Rust); Linux hands a process
//! the AMX state only after `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`, asked once in [`supported`].

use super::Ragged;
use crate::cancel::Cancel;
use crate::error::{invalid, CoreResult};
use crate::parallel;
use ndarray::{s, Array2};
use rayon::prelude::*;
use std::sync::OnceLock;

/// Document tokens per block: the block's fp32 rows, its packed bf16 copy and the score buffer stay in L2.
const DOC_BLOCK_TOKENS: usize = 512;
/// Dimensions per tile step (a tile row holds 32 bf16 values).
pub(crate) const K_STEP: usize = 32;
/// Query tokens per tile pass (two 16-row tiles) and document tokens per tile pass (two 16-column tiles).
pub(crate) const STEP: usize = 32;

/// Whether this CPU and OS run the AMX kernel (cpuid AMX-TILE and AMX-BF16, and the OS grants the tile state).
/// Also requires the active SIMD level to be AVX-512 ([`crate::simd`]), so a lower forced level turns it off.
pub fn supported() -> bool {
    crate::simd::active() >= crate::simd::Level::Avx512 && cpu_has_amx()
}

/// Whether this CPU and OS run the AMX kernel, whatever the active SIMD level.
pub fn cpu_has_amx() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(detect)
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn detect() -> bool {
    use std::arch::x86_64::__cpuid_count;
    let leaf7 = __cpuid_count(7, 0);
    let amx_bf16 = leaf7.edx & (1 << 22) != 0;
    let amx_tile = leaf7.edx & (1 << 24) != 0;
    if !(amx_bf16 && amx_tile && std::arch::is_x86_feature_detected!("avx512f")) {
        return false;
    }
    // arch_prctl(ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18); 0 on success.
    let ret: i64;
    // SAFETY: a plain Linux syscall that only changes this process's permitted xsave features.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") 158i64 => ret,
            in("rdi") 0x1023i64,
            in("rsi") 18i64,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack)
        );
    }
    ret == 0
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn detect() -> bool {
    false
}

/// Bound on `|bf16 score - exact score| / (|q| |d|)`: 2^-8 (+ its square) for the two roundings, plus fp32
/// accumulation over `dim` products (counted twice: the bf16 pass and the fp32 rescoring).
pub(crate) fn error_factor(dim: usize) -> f32 {
    let rounding = 2f64.powi(-8) * (1.0 + 2f64.powi(-8));
    let accumulation = 2.0 * (dim as f64 + 2.0) * 2f64.powi(-24);
    ((rounding + accumulation) * 1.01) as f32
}

/// f32 to bf16 bits, rounding to nearest even (inputs are finite).
#[inline(always)]
fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) as u16
}

/// The view itself when it is row-major and contiguous, else a row-major copy.
fn standard(view: ndarray::ArrayView2<'_, f32>) -> ndarray::CowArray<'_, f32, ndarray::Ix2> {
    if view.is_standard_layout() {
        ndarray::CowArray::from(view)
    } else {
        ndarray::CowArray::from(view.to_owned())
    }
}

fn all_finite(side: &Ragged) -> bool {
    side.data.iter().all(|v| v.is_finite())
}

fn row_norms(side: &Ragged) -> Vec<f32> {
    side.data
        .rows()
        .into_iter()
        .map(|r| r.iter().map(|v| v * v).sum::<f32>().sqrt())
        .collect()
}

/// Query rows as bf16, `padded_dim` wide, with `STEP` zero rows after the last (tile loads may run past a block).
pub(crate) fn pack_rows(data: ndarray::ArrayView2<f32>, padded_dim: usize) -> Vec<u16> {
    let rows = data.nrows();
    let mut out = vec![0u16; (rows + STEP) * padded_dim];
    for (r, row) in data.rows().into_iter().enumerate() {
        for (k, &v) in row.iter().enumerate() {
            out[r * padded_dim + k] = to_bf16(v);
        }
    }
    out
}

/// Document rows `rows` in the tile unit's pair layout: per group of 16 tokens, per dimension pair, the 16 tokens'
/// bf16 pairs (low half = even dimension). Groups are padded with zero tokens to a multiple of two.
pub(crate) fn pack_columns(
    data: ndarray::ArrayView2<f32>,
    rows: std::ops::Range<usize>,
    padded_dim: usize,
    out: &mut Vec<u32>,
) {
    let pairs = padded_dim / 2;
    let groups = rows.len().div_ceil(STEP) * 2;
    out.clear();
    out.resize(groups * pairs * 16, 0);
    let dim = data.ncols();
    for (n, r) in rows.enumerate() {
        let row = data.row(r);
        let (g, lane) = (n / 16, n % 16);
        for p in 0..dim.div_ceil(2) {
            let lo = u32::from(to_bf16(row[2 * p]));
            let hi = if 2 * p + 1 < dim {
                u32::from(to_bf16(row[2 * p + 1]))
            } else {
                0
            };
            out[(g * pairs + p) * 16 + lane] = lo | (hi << 16);
        }
    }
}

/// Per-thread buffers reused across document blocks: the packed block and the score buffer.
#[derive(Default)]
pub(super) struct Scratch {
    packed: Vec<u32>,
    buffer: Vec<f32>,
}

#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

/// Loads the tile shapes: tmm0-3 the 16x16 fp32 accumulators, tmm4-5 16x32 bf16 query rows, tmm6-7 16 pairs x 16
/// document tokens.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn configure_tiles() {
    let mut config = TileConfig {
        palette: 1,
        start_row: 0,
        reserved: [0; 14],
        colsb: [0; 16],
        rows: [0; 16],
    };
    for t in 0..8 {
        config.colsb[t] = 64;
        config.rows[t] = 16;
    }
    std::arch::asm!("ldtilecfg [{}]", in(reg) &config as *const TileConfig, options(nostack));
}

/// Computes the 32 x 32 bf16 score tile of rows `a0` (16 rows) and `a1` (the next 16; row stride `padded_dim`)
/// against column groups `g` and `g + 1` of `d` into tmm0-tmm3 (rows 0-15 x groups g, g+1, then rows 16-31).
///
/// # Safety
/// The tile configuration of [`configure_tiles`] is loaded; both row pointers have `padded_dim` readable values per
/// row for 16 rows; `d` holds at least `g + 2` packed groups.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn tile_2x2(a0: *const u16, a1: *const u16, d: *const u32, g: usize, padded_dim: usize) {
    use std::arch::asm;
    let pairs = padded_dim / 2;
    asm!(
        "tilezero tmm0",
        "tilezero tmm1",
        "tilezero tmm2",
        "tilezero tmm3",
        options(nostack)
    );
    for c in 0..padded_dim / K_STEP {
        let b0 = d.add((g * pairs + c * 16) * 16);
        let b1 = d.add(((g + 1) * pairs + c * 16) * 16);
        asm!(
            "tileloadd tmm4, [{a0} + {sa}*1]",
            "tileloadd tmm5, [{a1} + {sa}*1]",
            "tileloadd tmm6, [{b0} + {sb}*1]",
            "tileloadd tmm7, [{b1} + {sb}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            a0 = in(reg) a0.add(c * K_STEP),
            a1 = in(reg) a1.add(c * K_STEP),
            b0 = in(reg) b0,
            b1 = in(reg) b1,
            sa = in(reg) padded_dim * 2,
            sb = in(reg) 64usize,
            options(nostack),
        );
    }
}

/// `out[r][c] = q_r . d_c` in bf16 for `rows` (a multiple of 32) query rows from `q` (row stride `padded_dim`)
/// and `groups` (even) 16-token groups of `d`; `out` has row stride `out_cols` floats.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn score_block(
    q: *const u16,
    rows: usize,
    d: *const u32,
    groups: usize,
    padded_dim: usize,
    out: *mut f32,
    out_cols: usize,
) {
    use std::arch::asm;
    let c_stride = out_cols * 4;
    for r in (0..rows).step_by(STEP) {
        let a0 = q.add(r * padded_dim);
        let a1 = q.add((r + 16) * padded_dim);
        for g in (0..groups).step_by(2) {
            tile_2x2(a0, a1, d, g, padded_dim);
            let base = out.add(r * out_cols + g * 16);
            asm!(
                "tilestored [{c00} + {sc}*1], tmm0",
                "tilestored [{c01} + {sc}*1], tmm1",
                "tilestored [{c10} + {sc}*1], tmm2",
                "tilestored [{c11} + {sc}*1], tmm3",
                c00 = in(reg) base,
                c01 = in(reg) base.add(16),
                c10 = in(reg) base.add(16 * out_cols),
                c11 = in(reg) base.add(16 * out_cols + 16),
                sc = in(reg) c_stride,
                options(nostack),
            );
        }
    }
}

/// Bytes of bf16 rows per L1 block of [`score_block_max`].
const L1_ROW_BYTES: usize = 32 * 1024;

/// [`score_block`] folded straight into column maxima: for each of the `row_group.len()` (a multiple of 32)
/// query rows from `q` whose `row_group[r]` is not `u32::MAX`,
/// `best[row_group[r] * best_cols + c] = max(.., q_r . d_c)` over the `groups` (even) 16-token groups of `d`. Each
/// 32 x 32 score tile goes through a 4 KB buffer on the stack, so no score block is written to memory; runs of rows
/// of the same group keep their maxima in registers.
///
/// # Safety
/// The tile configuration of [`configure_tiles`] is loaded; `q` holds `row_group.len()` rows of `padded_dim` bf16
/// values, `d` holds `groups` packed groups, and every group index in `row_group` is below the number of rows of
/// `best` (row stride `best_cols` >= `groups * 16`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn score_block_max(
    q: *const u16,
    d: *const u32,
    groups: usize,
    padded_dim: usize,
    row_group: &[u32],
    best: *mut f32,
    best_cols: usize,
) {
    use std::arch::asm;
    use std::arch::x86_64::*;
    #[repr(C, align(64))]
    struct Tile([f32; 32 * 32]);
    let mut tile = Tile([0.0; 32 * 32]);
    let t = tile.0.as_mut_ptr();
    // Blocks of rows (32 KB of bf16 values: 128 rows at dim 128) stay in L1 while every 32-column group pair
    // of `d` passes over them: each pair's tiles come from L2 once per block rather than once per 32 rows.
    let row_block = (L1_ROW_BYTES / (padded_dim * 2)).max(1).div_ceil(STEP) * STEP;
    for r_block in (0..row_group.len()).step_by(row_block) {
        let r_end = (r_block + row_block).min(row_group.len());
        for g in (0..groups).step_by(2) {
            for r in (r_block..r_end).step_by(STEP) {
                let a0 = q.add(r * padded_dim);
                let a1 = q.add((r + 16) * padded_dim);
                let row_groups = &row_group[r..r + STEP];
                tile_2x2(a0, a1, d, g, padded_dim);
                // The 32 x 32 scores, row-major (row stride 128 bytes).
                asm!(
                    "tilestored [{c00} + {sc}*1], tmm0",
                    "tilestored [{c01} + {sc}*1], tmm1",
                    "tilestored [{c10} + {sc}*1], tmm2",
                    "tilestored [{c11} + {sc}*1], tmm3",
                    c00 = in(reg) t,
                    c01 = in(reg) t.add(16),
                    c10 = in(reg) t.add(16 * 32),
                    c11 = in(reg) t.add(16 * 32 + 16),
                    sc = in(reg) 128usize,
                    options(nostack),
                );
                let mut current = u32::MAX;
                let (mut lo, mut hi) = (_mm512_setzero_ps(), _mm512_setzero_ps());
                for (i, &group) in row_groups.iter().enumerate() {
                    if group != current {
                        if current != u32::MAX {
                            let acc = best.add(current as usize * best_cols + g * 16);
                            _mm512_storeu_ps(acc, _mm512_max_ps(_mm512_loadu_ps(acc), lo));
                            _mm512_storeu_ps(
                                acc.add(16),
                                _mm512_max_ps(_mm512_loadu_ps(acc.add(16)), hi),
                            );
                        }
                        current = group;
                        lo = _mm512_set1_ps(f32::NEG_INFINITY);
                        hi = lo;
                    }
                    if group != u32::MAX {
                        lo = _mm512_max_ps(lo, _mm512_load_ps(t.add(i * 32)));
                        hi = _mm512_max_ps(hi, _mm512_load_ps(t.add(i * 32 + 16)));
                    }
                }
                if current != u32::MAX {
                    let acc = best.add(current as usize * best_cols + g * 16);
                    _mm512_storeu_ps(acc, _mm512_max_ps(_mm512_loadu_ps(acc), lo));
                    _mm512_storeu_ps(acc.add(16), _mm512_max_ps(_mm512_loadu_ps(acc.add(16)), hi));
                }
            }
        }
    }
}

/// fp32 dot product (AVX-512, four accumulators).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut k = 0;
    // SAFETY (all loads): every offset read is below n, which is within both slices.
    while k + 64 <= n {
        for (u, slot) in acc.iter_mut().enumerate() {
            let o = k + 16 * u;
            *slot = unsafe {
                _mm512_fmadd_ps(
                    _mm512_loadu_ps(pa.add(o)),
                    _mm512_loadu_ps(pb.add(o)),
                    *slot,
                )
            };
        }
        k += 64;
    }
    while k + 16 <= n {
        acc[0] = unsafe {
            _mm512_fmadd_ps(
                _mm512_loadu_ps(pa.add(k)),
                _mm512_loadu_ps(pb.add(k)),
                acc[0],
            )
        };
        k += 16;
    }
    if k < n {
        let m: __mmask16 = ((1u32 << (n - k)) - 1) as u16;
        acc[1] = unsafe {
            _mm512_fmadd_ps(
                _mm512_maskz_loadu_ps(m, pa.add(k)),
                _mm512_maskz_loadu_ps(m, pb.add(k)),
                acc[1],
            )
        };
    }
    _mm512_reduce_add_ps(_mm512_add_ps(
        _mm512_add_ps(acc[0], acc[1]),
        _mm512_add_ps(acc[2], acc[3]),
    ))
}

/// The exact maximum of `q . d_t` over one document's tokens: the bf16 scores `segment` give the best bf16 score;
/// every token within `tolerance` of it is rescored in fp32 (`tokens`: the document's fp32 rows, `dim` wide) and
/// the largest fp32 score returned. AVX-512 throughout.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn exact_max(segment: &[f32], tolerance: f32, q: &[f32], tokens: &[f32], dim: usize) -> f32 {
    use std::arch::x86_64::*;
    let n = segment.len();
    let full = n / 16;
    let tail: __mmask16 = ((1u32 << (n % 16)) - 1) as u16;
    let mut best = _mm512_set1_ps(f32::NEG_INFINITY);
    for c in 0..full {
        // SAFETY: c * 16 + 16 <= n.
        best = _mm512_max_ps(best, unsafe {
            _mm512_loadu_ps(segment.as_ptr().add(c * 16))
        });
    }
    if tail != 0 {
        // SAFETY: the masked load reads only the n % 16 values after the full chunks.
        let v = unsafe { _mm512_mask_loadu_ps(best, tail, segment.as_ptr().add(full * 16)) };
        best = _mm512_max_ps(best, v);
    }
    let bars = _mm512_set1_ps(_mm512_reduce_max_ps(best) - tolerance);
    let mut exact = f32::NEG_INFINITY;
    for c in 0..=full {
        let live: __mmask16 = if c < full { 0xFFFF } else { tail };
        if live == 0 {
            break;
        }
        // SAFETY: the masked load reads only live lanes, all inside `segment`.
        let v = unsafe { _mm512_maskz_loadu_ps(live, segment.as_ptr().add(c * 16)) };
        let mut hits = _mm512_mask_cmp_ps_mask::<_CMP_GE_OQ>(live, v, bars);
        while hits != 0 {
            let t = c * 16 + hits.trailing_zeros() as usize;
            hits &= hits - 1;
            exact = exact.max(dot(q, &tokens[t * dim..(t + 1) * dim]));
        }
    }
    exact
}

/// The exact MaxSim matrix (see the module docs); `None` when the inputs hold non-finite values (the caller
/// falls back to the fp32 kernel). Same contract as [`super::maxsim`].
pub fn maxsim(
    queries: Ragged,
    documents: Ragged,
    weights: Option<&[f32]>,
    empty_score: f32,
    cancel: &Cancel,
) -> CoreResult<Option<Array2<f32>>> {
    let Some(prepared) = Prepared::new(queries, documents, weights, empty_score)? else {
        return Ok(None);
    };
    let (nq, nd) = (queries.len(), documents.len());
    let mut scores = Array2::<f32>::zeros((nq, nd));
    if nq == 0 || nd == 0 {
        return Ok(Some(scores));
    }
    let doc_blocks = prepared.doc_blocks();
    let parts: Vec<CoreResult<Array2<f32>>> =
        if parallel::parallel_enabled() && doc_blocks.len() > 1 {
            parallel::install(|| {
                doc_blocks
                    .par_iter()
                    .map_init(Scratch::default, |scratch, &block| {
                        prepared.block(scratch, block, None, cancel)
                    })
                    .collect()
            })
        } else {
            let mut scratch = Scratch::default();
            doc_blocks
                .iter()
                .map(|&block| prepared.block(&mut scratch, block, None, cancel))
                .collect()
        };
    for (part, &(d0, d1)) in parts.into_iter().zip(&doc_blocks) {
        scores.slice_mut(s![.., d0..d1]).assign(&part?);
    }
    Ok(Some(scores))
}

/// One scoring call's inputs, checked and packed once for every document block.
pub(super) struct Prepared<'q, 'd, 'w> {
    queries: Ragged<'q>,
    documents: Ragged<'d>,
    weights: Option<&'w [f32]>,
    empty_score: f32,
    dim: usize,
    padded_dim: usize,
    factor: f32,
    q_packed: Vec<u16>,
    q_norms: Vec<f32>,
    doc_max_norm: Vec<f32>,
    q_rows: ndarray::CowArray<'q, f32, ndarray::Ix2>,
    d_rows: ndarray::CowArray<'d, f32, ndarray::Ix2>,
    query_blocks: Vec<(usize, usize)>,
    /// Whether a document's score can be bounded from above (no negative query weights).
    prunable: bool,
}

impl<'q, 'd, 'w> Prepared<'q, 'd, 'w> {
    /// `None` when the inputs hold non-finite values; an error when the CPU lacks AMX.
    pub(super) fn new(
        queries: Ragged<'q>,
        documents: Ragged<'d>,
        weights: Option<&'w [f32]>,
        empty_score: f32,
    ) -> CoreResult<Option<Self>> {
        if !supported() {
            return Err(invalid("this CPU does not run the AMX kernel"));
        }
        if !all_finite(&queries) || !all_finite(&documents) {
            return Ok(None);
        }
        let dim = queries.data.ncols();
        let padded_dim = dim.div_ceil(K_STEP).max(1) * K_STEP;
        let d_norms = row_norms(&documents);
        let doc_max_norm = (0..documents.len())
            .map(|j| {
                d_norms[documents.tokens(j)]
                    .iter()
                    .fold(0f32, |m, &v| m.max(v))
            })
            .collect();
        Ok(Some(Prepared {
            queries,
            documents,
            weights,
            empty_score,
            dim,
            padded_dim,
            factor: error_factor(dim),
            q_packed: pack_rows(queries.data, padded_dim),
            q_norms: row_norms(&queries),
            doc_max_norm,
            q_rows: standard(queries.data),
            d_rows: standard(documents.data),
            query_blocks: super::blocks(&queries, super::QUERY_BLOCK_TOKENS),
            prunable: weights.is_none_or(|w| w.iter().all(|&v| v >= 0.0)),
        }))
    }

    /// Consecutive document groups of about [`DOC_BLOCK_TOKENS`] tokens.
    pub(super) fn doc_blocks(&self) -> Vec<(usize, usize)> {
        super::blocks(&self.documents, DOC_BLOCK_TOKENS)
    }

    /// Exact scores of every query against documents `d0..d1`, `(queries, d1 - d0)`. With `bars` (one per query),
    /// a document whose bf16 upper bound is below the query's bar is not rescored and scores `-inf` (it cannot
    /// reach the bar).
    pub(super) fn block(
        &self,
        scratch: &mut Scratch,
        (d0, d1): (usize, usize),
        bars: Option<&[f32]>,
        cancel: &Cancel,
    ) -> CoreResult<Array2<f32>> {
        #[cfg(target_arch = "x86_64")]
        {
            self.block_x86(scratch, (d0, d1), bars, cancel)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (scratch, bars, cancel);
            Err(invalid(format!(
                "this CPU does not run the AMX kernel ({d0}..{d1})"
            )))
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn block_x86(
        &self,
        scratch: &mut Scratch,
        (d0, d1): (usize, usize),
        bars: Option<&[f32]>,
        cancel: &Cancel,
    ) -> CoreResult<Array2<f32>> {
        let (queries, documents) = (&self.queries, &self.documents);
        let (dim, padded_dim) = (self.dim, self.padded_dim);
        let mut out = Array2::<f32>::zeros((queries.len(), d1 - d0));
        let doc_rows = documents.offsets[d0]..documents.offsets[d1];
        if doc_rows.is_empty() {
            out.fill(self.empty_score);
            return Ok(out);
        }
        let d_flat = self.d_rows.as_slice().unwrap_or(&[]);
        let Scratch { packed, buffer } = scratch;
        pack_columns(documents.data, doc_rows.clone(), padded_dim, packed);
        let groups = doc_rows.len().div_ceil(STEP) * 2;
        let cols = groups * 16;
        let bars = bars.filter(|_| self.prunable);
        // SAFETY: `supported()` checked the CPU and the OS permission; the config is per thread.
        unsafe { configure_tiles() };
        for &(q0, q1) in &self.query_blocks {
            cancel.check()?;
            let query_rows = queries.offsets[q0]..queries.offsets[q1];
            if query_rows.is_empty() {
                continue;
            }
            let rows = query_rows.len().div_ceil(STEP) * STEP;
            buffer.resize(rows * cols, 0.0);
            // SAFETY: `q_packed` has STEP zero rows past the last query row, so the `rows` rows from
            // `query_rows.start` are in bounds; `packed` holds `groups` groups; `buffer` is rows x cols.
            unsafe {
                score_block(
                    self.q_packed.as_ptr().add(query_rows.start * padded_dim),
                    rows,
                    packed.as_ptr(),
                    groups,
                    padded_dim,
                    buffer.as_mut_ptr(),
                    cols,
                );
            }
            for i in q0..q1 {
                for j in d0..d1 {
                    let t = documents.tokens(j);
                    if t.is_empty() {
                        continue;
                    }
                    let from = t.start - doc_rows.start;
                    let segment = |r: usize| {
                        let local = r - query_rows.start;
                        &buffer[local * cols + from..local * cols + from + t.len()]
                    };
                    let tolerance =
                        |r: usize| 2.0 * self.factor * self.q_norms[r] * self.doc_max_norm[j];
                    let weight = |r: usize| self.weights.map_or(1.0, |w| w[r]);
                    if let Some(bars) = bars {
                        // SAFETY: supported() implies avx512f.
                        let bound: f32 = queries
                            .tokens(i)
                            .map(|r| {
                                weight(r) * (unsafe { segment_max(segment(r)) } + tolerance(r))
                            })
                            .sum();
                        if bound < bars[i] {
                            out[[i, j - d0]] = f32::NEG_INFINITY;
                            continue;
                        }
                    }
                    let tokens = &d_flat[t.start * dim..t.end * dim];
                    let mut total = 0f32;
                    for r in queries.tokens(i) {
                        let q = self.q_rows.row(r);
                        // SAFETY: supported() implies avx512f.
                        let best = unsafe {
                            exact_max(
                                segment(r),
                                tolerance(r),
                                q.as_slice().unwrap_or(&[]),
                                tokens,
                                dim,
                            )
                        };
                        total += weight(r) * best;
                    }
                    out[[i, j - d0]] = total;
                }
            }
        }
        // SAFETY: releases this thread's tile state.
        unsafe { std::arch::asm!("tilerelease", options(nostack)) };
        for j in d0..d1 {
            if documents.tokens(j).is_empty() {
                out.column_mut(j - d0).fill(self.empty_score);
            }
        }
        Ok(out)
    }
}

/// Largest value of a segment (AVX-512).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn segment_max(segment: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = segment.len();
    let full = n / 16;
    let tail: __mmask16 = ((1u32 << (n % 16)) - 1) as u16;
    let mut best = _mm512_set1_ps(f32::NEG_INFINITY);
    for c in 0..full {
        // SAFETY: c * 16 + 16 <= n.
        best = _mm512_max_ps(best, unsafe {
            _mm512_loadu_ps(segment.as_ptr().add(c * 16))
        });
    }
    if tail != 0 {
        // SAFETY: the masked load reads only the n % 16 values after the full chunks.
        let v = unsafe { _mm512_mask_loadu_ps(best, tail, segment.as_ptr().add(full * 16)) };
        best = _mm512_max_ps(best, v);
    }
    _mm512_reduce_max_ps(best)
}

#[cfg(test)]
mod tests {
    use super::super::{maxsim_with, Kernel};
    use super::*;

    /// Deterministic pseudo-random values in [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn side(lengths: &[usize], dim: usize, seed: u64) -> (Array2<f32>, Vec<usize>) {
        let mut offsets = vec![0];
        for &n in lengths {
            offsets.push(offsets[offsets.len() - 1] + n);
        }
        let rows = offsets[offsets.len() - 1];
        let data = Array2::from_shape_vec((rows, dim), values(rows * dim, seed)).unwrap();
        (data, offsets)
    }

    fn check(q_lens: &[usize], d_lens: &[usize], dim: usize, seed: u64, weights: bool) {
        if !supported() {
            return;
        }
        let (qd, qo) = side(q_lens, dim, seed);
        let (dd, doff) = side(d_lens, dim, seed + 1);
        let qr = Ragged::new(qd.view(), &qo, "q").unwrap();
        let dr = Ragged::new(dd.view(), &doff, "d").unwrap();
        let w: Vec<f32> = values(qd.nrows(), seed + 2)
            .iter()
            .map(|v| v + 1.5)
            .collect();
        let w = weights.then_some(&w[..]);
        let cancel = Cancel::new();
        let want = maxsim_with(qr, dr, w, -1e9, &cancel, Kernel::Fp32).unwrap();
        let got = maxsim_with(qr, dr, w, -1e9, &cancel, Kernel::Amx).unwrap();
        for ((i, j), &v) in want.indexed_iter() {
            let g = got[[i, j]];
            assert!(
                (g - v).abs() <= 1e-5 * (1.0 + v.abs()),
                "query {i} document {j}: amx {g} fp32 {v} (dim {dim})"
            );
        }
    }

    #[test]
    fn equals_the_fp32_kernel() {
        check(&[32, 5, 0, 17], &[180, 3, 0, 1, 250, 16, 33], 128, 1, false);
        check(&[7, 40], &[1, 2, 3, 4, 5, 64, 100], 37, 2, true);
        check(&[3], &[2100, 10], 96, 3, false);
        check(&[300, 1], &[9; 300], 8, 4, true);
        check(&[1], &[1], 1, 5, false);
    }

    #[test]
    fn close_scores_are_resolved_exactly() {
        // Document tokens that differ from each other far below bf16 resolution: only the fp32 rescoring can
        // tell which is the maximum.
        if !supported() {
            return;
        }
        let dim = 64;
        let q = Array2::from_shape_vec((1, dim), values(dim, 9)).unwrap();
        let base = values(dim, 10);
        let mut rows = Vec::new();
        for t in 0..40 {
            rows.extend(
                base.iter()
                    .enumerate()
                    .map(|(k, &v)| v + (t as f32) * 1e-6 * ((k % 3) as f32)),
            );
        }
        let d = Array2::from_shape_vec((40, dim), rows).unwrap();
        let (qo, doff) = (vec![0, 1], vec![0, 40]);
        let qr = Ragged::new(q.view(), &qo, "q").unwrap();
        let dr = Ragged::new(d.view(), &doff, "d").unwrap();
        let cancel = Cancel::new();
        let want = maxsim_with(qr, dr, None, -1e9, &cancel, Kernel::Fp32).unwrap();
        let got = maxsim_with(qr, dr, None, -1e9, &cancel, Kernel::Amx).unwrap();
        assert!(
            (want[[0, 0]] - got[[0, 0]]).abs() <= 1e-6,
            "{} {}",
            want[[0, 0]],
            got[[0, 0]]
        );
    }

    #[test]
    fn top_k_equals_sorting_the_full_matrix() {
        use super::super::maxsim_topk;
        let dim = 48;
        let q_lens = [8, 3, 0, 12];
        let d_lens: Vec<usize> = (0..300).map(|j| (j * 7) % 23).collect(); // some empty documents
        let (qd, qo) = side(&q_lens, dim, 21);
        let (dd, doff) = side(&d_lens, dim, 22);
        let qr = Ragged::new(qd.view(), &qo, "q").unwrap();
        let dr = Ragged::new(dd.view(), &doff, "d").unwrap();
        let cancel = Cancel::new();
        let full = maxsim_with(qr, dr, None, -1e9, &cancel, Kernel::Fp32).unwrap();
        let kernels: &[Kernel] = if supported() {
            &[Kernel::Fp32, Kernel::Amx]
        } else {
            &[Kernel::Fp32]
        };
        for &kernel in kernels {
            for k in [1, 5, 299, 400] {
                let (ids, scores) = maxsim_topk(qr, dr, None, k, -1e9, &cancel, kernel).unwrap();
                for i in 0..q_lens.len() {
                    let mut order: Vec<usize> = (0..d_lens.len()).collect();
                    order.sort_by(|&a, &b| full[[i, b]].total_cmp(&full[[i, a]]).then(a.cmp(&b)));
                    for rank in 0..k {
                        if rank >= d_lens.len() {
                            assert_eq!(ids[[i, rank]], -1);
                            continue;
                        }
                        let want = full[[i, order[rank]]];
                        let got = scores[[i, rank]];
                        assert!(
                            (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                            "{kernel:?} k={k} q={i} r={rank}"
                        );
                        let id = ids[[i, rank]] as usize;
                        assert!((full[[i, id]] - got).abs() <= 1e-5 * (1.0 + got.abs()));
                    }
                }
            }
        }
        assert!(maxsim_topk(qr, dr, None, 0, -1e9, &cancel, Kernel::Fp32).is_err());
    }

    #[test]
    fn non_finite_inputs_use_the_fp32_kernel() {
        if !supported() {
            return;
        }
        let mut q = Array2::from_shape_vec((2, 4), values(8, 1)).unwrap();
        q[[1, 2]] = f32::NAN;
        let d = Array2::from_shape_vec((3, 4), values(12, 2)).unwrap();
        let (qo, doff) = (vec![0, 2], vec![0, 3]);
        let qr = Ragged::new(q.view(), &qo, "q").unwrap();
        let dr = Ragged::new(d.view(), &doff, "d").unwrap();
        assert!(super::maxsim(qr, dr, None, -1e9, &Cancel::new())
            .unwrap()
            .is_none());
    }
}
