//! Approximate inner products in bf16 on CPUs with AVX512-BF16 (`vdpbf16ps`: twice the fp32 FMA rate).
//!
//! Used only to pick candidates: [`super::topk_search`] rescores them in fp32 and proves that no row outside
//! the candidates can enter the top k, so results stay exact. Rounding an f32 to bf16 (nearest even)
//! changes it by at most 2^-9 of its magnitude, so a bf16 dot product is within `2^-8 * |q| * |c|` of the fp32
//! one, plus the fp32 accumulation error.

use super::hits::{offer, rank_key, Hit};
use crate::parallel;
use ndarray::{ArrayView1, ArrayView2};
use rayon::prelude::*;
use std::collections::BinaryHeap;

/// Corpus rows per packed panel (one 512-bit register of fp32 scores).
const PANEL: usize = 16;
/// Queries scored together per panel pass (accumulators held in registers).
const GROUP: usize = 8;

/// Whether this CPU runs the bf16 kernel at the active SIMD level ([`crate::simd`]).
pub fn supported() -> bool {
    crate::simd::active() >= crate::simd::Level::Avx512 && cpu_supported()
}

/// Whether this CPU has the features of the bf16 kernel (avx512f and avx512bf16), whatever the active level.
pub fn cpu_supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// f32 to bf16, rounding to nearest even (inputs are finite).
#[inline(always)]
fn to_bf16(x: f32) -> u32 {
    let bits = x.to_bits();
    (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
}

/// Consecutive dimension pairs of a row as packed bf16 pairs (low half = even dimension); odd `d` pads with 0.
fn pack_row(row: ndarray::ArrayView1<f32>, pairs: usize, out: &mut [u32]) {
    let values: std::borrow::Cow<[f32]> = row
        .as_slice()
        .map_or_else(|| row.to_vec().into(), Into::into);
    for (slot, pair) in out.iter_mut().take(pairs).zip(values.chunks(2)) {
        *slot = to_bf16(pair[0]) | (pair.get(1).map_or(0, |&v| to_bf16(v)) << 16);
    }
}

/// Queries packed for [`search_block`]: rows of bf16 pairs, padded with zero rows to whole groups.
pub struct PackedQueries {
    pairs: usize,
    data: Vec<u32>,
}

impl PackedQueries {
    /// Packs `(n, d)` queries.
    pub fn new(queries: ArrayView2<f32>) -> Self {
        let pairs = queries.ncols().div_ceil(2);
        let rows = queries.nrows();
        let padded = rows.div_ceil(GROUP) * GROUP;
        let mut data = vec![0u32; padded * pairs];
        for (r, row) in queries.rows().into_iter().enumerate() {
            pack_row(row, pairs, &mut data[r * pairs..(r + 1) * pairs]);
        }
        PackedQueries { pairs, data }
    }
}

/// Corpus rows packed panel-major: panel p, pair j holds 16 rows' bf16 pairs contiguously.
fn pack_block(block: ArrayView2<f32>, pairs: usize) -> Vec<u32> {
    let panels = block.nrows().div_ceil(PANEL);
    let mut data = vec![0u32; panels * pairs * PANEL];
    let fill = |(p, panel): (usize, &mut [u32])| {
        let mut row_pairs = vec![0u32; pairs];
        for lane in 0..PANEL {
            let r = p * PANEL + lane;
            if r >= block.nrows() {
                break;
            }
            pack_row(block.row(r), pairs, &mut row_pairs);
            for (j, &v) in row_pairs.iter().enumerate() {
                panel[j * PANEL + lane] = v;
            }
        }
    };
    if parallel::parallel_enabled() && panels > 8 {
        parallel::install(|| {
            data.par_chunks_mut(pairs * PANEL)
                .enumerate()
                .for_each(fill)
        });
    } else {
        data.chunks_mut(pairs * PANEL).enumerate().for_each(fill);
    }
    data
}

/// Offers every row of `block` (corpus indices from `col_offset`) to the per-query heaps of at most `k` best hits,
/// by bf16 score (times `scale[row]` when given: cosine from dot products and inverse norms). Scores never leave
/// the registers unless they beat a query's current bar. Requires [`supported`]; `heaps` has one heap per query.
pub(super) fn search_block(
    queries: &PackedQueries,
    block: ArrayView2<f32>,
    col_offset: usize,
    scale: Option<ArrayView1<f32>>,
    heaps: &mut [BinaryHeap<Hit>],
    k: usize,
) {
    let n = block.nrows();
    let pairs = queries.pairs;
    if n == 0 || k == 0 || heaps.is_empty() {
        return;
    }
    let panels = n.div_ceil(PANEL);
    let packed = pack_block(block, pairs);
    // Padded to whole panels so a full-width load is always in bounds.
    let mut factors = vec![1f32; panels * PANEL];
    if let Some(scale) = &scale {
        for (f, &v) in factors.iter_mut().zip(scale.iter()) {
            *f = v;
        }
    }
    let scaled = scale.is_some();
    let work = |(g, group): (usize, &mut [BinaryHeap<Hit>])| {
        let q = &queries.data[g * GROUP * pairs..(g + 1) * GROUP * pairs];
        let mut bars = [f32::INFINITY; GROUP];
        for (bar, heap) in bars.iter_mut().zip(group.iter()) {
            *bar = if heap.len() == k {
                heap.peek().map_or(f32::NEG_INFINITY, |w| w.score)
            } else {
                f32::NEG_INFINITY
            };
        }
        let mut tile = [[0f32; PANEL]; GROUP];
        for p in 0..panels {
            let panel = &packed[p * pairs * PANEL..(p + 1) * pairs * PANEL];
            let factor = &factors[p * PANEL..(p + 1) * PANEL];
            let lanes = PANEL.min(n - p * PANEL);
            #[cfg(target_arch = "x86_64")]
            // SAFETY: callers check `supported()` (avx512f + avx512bf16) before searching.
            let hits = unsafe {
                tile_select_avx512(
                    q,
                    panel,
                    pairs,
                    scaled.then_some(factor),
                    lanes,
                    &bars,
                    &mut tile,
                )
            };
            #[cfg(not(target_arch = "x86_64"))]
            let hits = 0u128;
            if hits == 0 {
                continue;
            }
            for (i, heap) in group.iter_mut().enumerate() {
                let mut mask = (hits >> (i * PANEL)) & 0xFFFF;
                while mask != 0 {
                    let lane = mask.trailing_zeros() as usize;
                    mask &= mask - 1;
                    let score = rank_key(tile[i][lane]);
                    if score >= bars[i] {
                        bars[i] = offer(
                            heap,
                            k,
                            Hit {
                                score,
                                index: col_offset + p * PANEL + lane,
                            },
                        );
                    }
                }
            }
        }
    };
    if parallel::parallel_enabled() && heaps.len() > GROUP {
        parallel::install(|| heaps.par_chunks_mut(GROUP).enumerate().for_each(work));
    } else {
        heaps.chunks_mut(GROUP).enumerate().for_each(work);
    }
}

/// `GROUP` queries x the first `lanes` rows of one panel, scaled by `factor` when given; writes the tile and
/// returns a bit mask (16 bits per query, query-major) of the lanes whose score reaches the query's bar.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
fn tile_select_avx512(
    q: &[u32],
    panel: &[u32],
    pairs: usize,
    factor: Option<&[f32]>,
    lanes: usize,
    bars: &[f32; GROUP],
    tile: &mut [[f32; PANEL]; GROUP],
) -> u128 {
    use std::arch::x86_64::*;
    debug_assert!(q.len() >= GROUP * pairs && panel.len() >= pairs * PANEL && lanes <= PANEL);
    let mut acc = [_mm512_setzero_ps(); GROUP];
    for j in 0..pairs {
        // SAFETY: j * PANEL + 16 <= pairs * PANEL <= panel.len().
        let c: __m512bh = unsafe {
            std::mem::transmute(_mm512_loadu_si512(panel.as_ptr().add(j * PANEL).cast()))
        };
        for (i, a) in acc.iter_mut().enumerate() {
            // SAFETY: a plain bit cast of sixteen bf16 pairs.
            let b: __m512bh =
                unsafe { std::mem::transmute(_mm512_set1_epi32(q[i * pairs + j] as i32)) };
            *a = _mm512_dpbf16_ps(*a, c, b);
        }
    }
    let lane_mask: __mmask16 = if lanes == PANEL {
        0xFFFF
    } else {
        (1u16 << lanes) - 1
    };
    let scale = factor.map(|f| {
        // SAFETY: `factor` holds exactly PANEL values.
        unsafe { _mm512_loadu_ps(f.as_ptr()) }
    });
    let mut hits: u128 = 0;
    for (i, a) in acc.iter().enumerate() {
        let v = match scale {
            Some(s) => _mm512_mul_ps(*a, s),
            None => *a,
        };
        let m = _mm512_mask_cmp_ps_mask::<_CMP_GE_OQ>(lane_mask, v, _mm512_set1_ps(bars[i]));
        if m != 0 {
            // SAFETY: each tile row holds exactly 16 f32.
            unsafe { _mm512_storeu_ps(tile[i].as_mut_ptr(), v) };
            hits |= u128::from(m) << (i * PANEL);
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn rounding_is_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        assert_eq!(to_bf16(f32::from_bits(0x3F80_8000)), 0x3F80); // exactly halfway: to even
        assert_eq!(f32::from_bits(to_bf16(-2.5) << 16), -2.5);
    }

    #[test]
    fn scores_are_within_the_bound() {
        if !supported() {
            return;
        }
        let d = 37;
        let (nq, nc) = (13, 45);
        let q = Array2::from_shape_fn((nq, d), |(i, j)| ((i * 7 + j * 3) % 11) as f32 / 5.0 - 1.0);
        let c = Array2::from_shape_fn((nc, d), |(i, j)| ((i * 5 + j * 13) % 17) as f32 / 8.0 - 1.0);
        // k = every row: each heap ends up holding all bf16 scores.
        let mut heaps: Vec<BinaryHeap<Hit>> = (0..nq).map(|_| BinaryHeap::new()).collect();
        search_block(
            &PackedQueries::new(q.view()),
            c.view(),
            0,
            None,
            &mut heaps,
            nc,
        );
        for (i, heap) in heaps.into_iter().enumerate() {
            assert_eq!(heap.len(), nc);
            for hit in heap {
                let r = hit.index;
                let exact: f32 = (0..d).map(|j| q[[i, j]] * c[[r, j]]).sum();
                let mag: f32 = (0..d).map(|j| (q[[i, j]] * c[[r, j]]).abs()).sum();
                assert!(
                    (hit.score - rank_key(exact)).abs() <= mag / 256.0 + 1e-5,
                    "{i} {r}"
                );
            }
        }
    }
}
