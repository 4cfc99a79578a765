//! SPLADE's last layer and max pooling in one pass on Intel AMX, exact: `max_t log1p(relu(h_t . w_v + b_v))` for
//! every vocabulary entry `v` of every text, without the `(tokens, vocab)` logits.
//!
//! The logits are computed in bf16 tiles (see [`crate::maxsim::amx`]): rounding moves each bf16 logit by at most
//! `EPS * |h_t| * |w_v|` from the exact one. Max pooling keeps, per text and entry, the largest logit; an entry whose
//! largest bf16 logit plus that bound is not positive is exactly zero after `relu`, and almost every entry is.
//! The few others are rescored in fp32 over the text's tokens, so every stored value is an fp32 logit's
//! activation (the sparsity pattern and values of fp32 pooling, up to fp32 summation order).

use crate::cancel::Cancel;
use crate::error::{invalid, CoreError, CoreResult};
use crate::maxsim::amx;
use crate::parallel;
use crate::sparse::{SparseCsr, SpladeActivation};
use ndarray::{Array2, ArrayView1, ArrayView2, ArrayView3};
use rayon::prelude::*;

/// Vocabulary entries per block (the unit of parallel work): 512 x 128 bf16 weights are 128 KB.
const VOCAB_BLOCK: usize = 512;

/// Per text, its active `(entry, value)` pairs, ascending by entry.
type ActiveRows = Vec<Vec<(usize, f32)>>;

/// The MLM decoder's weight `(vocab, dim)` and bias `(vocab,)` prepared for [`SpladeHeadWeights::max_pool`]: bf16
/// blocks in the tile unit's layout, fp32 rows for rescoring, and row norms for the error bound. Preparing costs
/// about as much as one batch of a small model, so an encode prepares once and pools every batch with it.
pub struct SpladeHeadWeights {
    dim: usize,
    vocab: usize,
    padded_dim: usize,
    /// One packed block per `VOCAB_BLOCK` entries.
    packed: Vec<Vec<u32>>,
    weight: Vec<f32>,
    /// The bias (zeros without one).
    shift: Vec<f32>,
    /// `2 * error_factor(dim) * |w_v|`: times a text's largest token norm, the bf16 error bound of entry `v`.
    slack: Vec<f32>,
    /// Whether the weight and bias hold only finite values (pooling returns None otherwise).
    finite: bool,
}

impl SpladeHeadWeights {
    /// Packs `weight` and `bias` (shapes checked); an error when the CPU lacks AMX.
    pub fn new(weight: ArrayView2<f32>, bias: Option<ArrayView1<f32>>) -> CoreResult<Self> {
        if !amx::supported() {
            return Err(invalid("this CPU does not run the AMX kernel"));
        }
        let (vocab, dim) = weight.dim();
        if let Some(b) = &bias {
            if b.len() != vocab {
                return Err(CoreError::ShapeMismatch(format!(
                    "the decoder bias must have {vocab} values, got {}",
                    b.len()
                )));
            }
        }
        let weight = weight.as_standard_layout();
        let finite = weight.iter().all(|v| v.is_finite())
            && bias.is_none_or(|b| b.iter().all(|v| v.is_finite()));
        let padded_dim = dim.div_ceil(amx::K_STEP).max(1) * amx::K_STEP;
        let blocks: Vec<usize> = (0..vocab).step_by(VOCAB_BLOCK).collect();
        let pack = |&v0: &usize| {
            let mut packed = Vec::new();
            amx::pack_columns(
                weight.view(),
                v0..(v0 + VOCAB_BLOCK).min(vocab),
                padded_dim,
                &mut packed,
            );
            packed
        };
        let packed = if parallel::parallel_enabled() && blocks.len() > 1 {
            parallel::install(|| blocks.par_iter().map(pack).collect())
        } else {
            blocks.iter().map(pack).collect()
        };
        let factor = amx::error_factor(dim);
        let slack = weight
            .rows()
            .into_iter()
            .map(|r| 2.0 * factor * r.iter().map(|v| v * v).sum::<f32>().sqrt())
            .collect();
        Ok(SpladeHeadWeights {
            dim,
            vocab,
            padded_dim,
            packed,
            weight: weight.iter().copied().collect(),
            shift: bias.map_or_else(|| vec![0.0; vocab], |b| b.to_vec()),
            slack,
            finite,
        })
    }

    /// The vocabulary size (rows of the weight).
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// The hidden size (columns of the weight).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// `max_t act(h_t . w_v + b_v)` over the attended tokens of each text, as CSR rows pruned to
    /// `max_active_dims` (the largest values, ties to the lower entry): the output of SPLADE max pooling over the
    /// MLM decoder. `hidden` is `(batch, seq, dim)`, `mask` `(batch, seq)`. `None` when the inputs hold non-finite
    /// values (the caller computes the logits instead).
    pub fn max_pool(
        &self,
        hidden: ArrayView3<f32>,
        mask: ArrayView2<i64>,
        activation: SpladeActivation,
        max_active_dims: Option<usize>,
        cancel: &Cancel,
    ) -> CoreResult<Option<SparseCsr>> {
        let (batch, seq, dim) = hidden.dim();
        let (vocab, padded_dim) = (self.vocab, self.padded_dim);
        if mask.dim() != (batch, seq) {
            return Err(CoreError::ShapeMismatch(format!(
                "attention_mask must have shape ({batch}, {seq}), got {:?}",
                mask.dim()
            )));
        }
        if dim != self.dim {
            return Err(CoreError::ShapeMismatch(format!(
                "the decoder weight must have {dim} columns (the hidden size), got {}",
                self.dim
            )));
        }
        if max_active_dims == Some(0) {
            return Err(invalid("max_active_dims must be >= 1, got 0"));
        }
        if !self.finite || !hidden.iter().all(|v| v.is_finite()) {
            return Ok(None);
        }
        // The attended tokens of every text, back to back.
        let mut offsets = vec![0usize];
        let mut rows: Vec<f32> = Vec::new();
        for b in 0..batch {
            for t in 0..seq {
                if mask[[b, t]] != 0 {
                    rows.extend(hidden.slice(ndarray::s![b, t, ..]).iter());
                }
            }
            offsets.push(rows.len() / dim.max(1));
        }
        let total = offsets[batch];
        let tokens = Array2::from_shape_vec((total, dim), rows)
            .map_err(|e| invalid(format!("token rows: {e}")))?;
        let packed_rows = amx::pack_rows(tokens.view(), padded_dim);
        let norm = |r: ndarray::ArrayView1<f32>| r.iter().map(|v| v * v).sum::<f32>().sqrt();
        let text_norm: Vec<f32> = (0..batch)
            .map(|b| {
                (offsets[b]..offsets[b + 1])
                    .map(|t| norm(tokens.row(t)))
                    .fold(0f32, f32::max)
            })
            .collect();
        let flat_tokens = tokens.as_slice().unwrap_or(&[]);
        let (flat_weight, shift, slack) = (&self.weight, &self.shift, &self.slack);
        // The text of every token row (u32::MAX for the padding rows of the last tile pass).
        let pass_rows = total.div_ceil(amx::STEP) * amx::STEP;
        let mut row_group = vec![u32::MAX; pass_rows];
        for b in 0..batch {
            row_group[offsets[b]..offsets[b + 1]].fill(b as u32);
        }
        let activate = |x: f32| {
            let y = x.max(0.0).ln_1p();
            if activation == SpladeActivation::Log1pRelu {
                y.ln_1p()
            } else {
                y
            }
        };
        let blocks: Vec<usize> = (0..self.packed.len()).collect();
        // Per vocabulary block: for each text, its active (entry, value) pairs in the block, ascending.
        let block_work = |&block: &usize| -> CoreResult<ActiveRows> {
            cancel.check()?;
            let v0 = block * VOCAB_BLOCK;
            let v1 = (v0 + VOCAB_BLOCK).min(vocab);
            let packed = &self.packed[block];
            let groups = (v1 - v0).div_ceil(amx::STEP) * 2;
            let cols = groups * 16;
            BEST.with(|scratch| {
                let mut best = scratch.borrow_mut();
                best.clear();
                best.resize(batch * cols, f32::NEG_INFINITY);
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `supported()` checked the CPU (AMX implies avx512f) and the OS permission; the tile config
                // is per thread. `packed_rows` has STEP zero rows past the last token, so `pass_rows` rows are in
                // bounds; `packed` holds `groups` groups; `row_group` has `pass_rows` entries, each a text index
                // below `batch` or u32::MAX; `best` is batch x cols.
                unsafe {
                    amx::configure_tiles();
                    amx::score_block_max(
                        packed_rows.as_ptr(),
                        packed.as_ptr(),
                        groups,
                        padded_dim,
                        &row_group,
                        best.as_mut_ptr(),
                        cols,
                    );
                    std::arch::asm!("tilerelease", options(nostack));
                }
                let mut out = vec![Vec::new(); batch];
                let mut candidates = Vec::new();
                for (b, active) in out.iter_mut().enumerate() {
                    let text = offsets[b]..offsets[b + 1];
                    if text.is_empty() {
                        continue;
                    }
                    // Entries whose largest bf16 logit plus the error bound is positive; every other logit of the
                    // text is negative, and relu makes it 0.
                    candidates.clear();
                    let acc = &best[b * cols..b * cols + (v1 - v0)];
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: supported() implies avx512f.
                    unsafe {
                        positive_bounds(
                            acc,
                            &shift[v0..v1],
                            &slack[v0..v1],
                            text_norm[b],
                            v0,
                            &mut candidates,
                        )
                    };
                    for &v in &candidates {
                        let w = &flat_weight[v * dim..(v + 1) * dim];
                        let mut top = f32::NEG_INFINITY;
                        for t in text.clone() {
                            #[cfg(target_arch = "x86_64")]
                            // SAFETY: supported() implies avx512f.
                            let logit =
                                unsafe { amx::dot(&flat_tokens[t * dim..(t + 1) * dim], w) };
                            #[cfg(not(target_arch = "x86_64"))]
                            let logit = 0f32;
                            top = top.max(logit + shift[v]);
                        }
                        if top > 0.0 {
                            active.push((v, activate(top)));
                        }
                    }
                }
                Ok(out)
            })
        };
        let parts: Vec<CoreResult<ActiveRows>> = if parallel::parallel_enabled() && blocks.len() > 1
        {
            parallel::install(|| blocks.par_iter().map(block_work).collect())
        } else {
            blocks.iter().map(block_work).collect()
        };
        let mut per_text: ActiveRows = vec![Vec::new(); batch];
        for part in parts {
            for (text, active) in per_text.iter_mut().zip(part?) {
                text.extend(active);
            }
        }
        let mut indptr = vec![0i64];
        let (mut indices, mut values) = (Vec::new(), Vec::new());
        for mut active in per_text {
            if let Some(k) = max_active_dims {
                if active.len() > k {
                    active.select_nth_unstable_by(k, |a, b| {
                        b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0))
                    });
                    active.truncate(k);
                    active.sort_by_key(|&(v, _)| v);
                }
            }
            for (v, x) in active {
                indices.push(v as i64);
                values.push(x);
            }
            indptr.push(indices.len() as i64);
        }
        Ok(Some(SparseCsr {
            indptr,
            indices,
            values,
            cols: vocab,
        }))
    }
}

thread_local! {
    /// Per worker thread: the column maxima of a vocabulary block, reused across blocks and calls.
    static BEST: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Pushes `v0 + i` for every `i` where `best[i] + shift[i] + norm * slack[i] > 0` (AVX-512, ascending).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn positive_bounds(
    best: &[f32],
    shift: &[f32],
    slack: &[f32],
    norm: f32,
    v0: usize,
    out: &mut Vec<usize>,
) {
    use std::arch::x86_64::*;
    let n = best.len().min(shift.len()).min(slack.len());
    let scale = _mm512_set1_ps(norm);
    let zero = _mm512_setzero_ps();
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n, within all three slices.
        let mut bits = unsafe {
            let bound = _mm512_fmadd_ps(
                scale,
                _mm512_loadu_ps(slack.as_ptr().add(i)),
                _mm512_add_ps(
                    _mm512_loadu_ps(best.as_ptr().add(i)),
                    _mm512_loadu_ps(shift.as_ptr().add(i)),
                ),
            );
            _mm512_cmp_ps_mask::<_CMP_GT_OQ>(bound, zero)
        };
        while bits != 0 {
            out.push(v0 + i + bits.trailing_zeros() as usize);
            bits &= bits - 1;
        }
        i += 16;
    }
    for j in i..n {
        if best[j] + shift[j] + norm * slack[j] > 0.0 {
            out.push(v0 + j);
        }
    }
}

/// [`SpladeHeadWeights::max_pool`] with the weights prepared for this one call.
pub fn splade_max_head(
    hidden: ArrayView3<f32>,
    mask: ArrayView2<i64>,
    weight: ArrayView2<f32>,
    bias: Option<ArrayView1<f32>>,
    activation: SpladeActivation,
    max_active_dims: Option<usize>,
    cancel: &Cancel,
) -> CoreResult<Option<SparseCsr>> {
    if !amx::supported() {
        return Err(invalid("this CPU does not run the AMX kernel"));
    }
    let (batch, seq, dim) = hidden.dim();
    if mask.dim() != (batch, seq) {
        return Err(CoreError::ShapeMismatch(format!(
            "attention_mask must have shape ({batch}, {seq}), got {:?}",
            mask.dim()
        )));
    }
    if weight.ncols() != dim {
        return Err(CoreError::ShapeMismatch(format!(
            "the decoder weight must have {dim} columns (the hidden size), got {}",
            weight.ncols()
        )));
    }
    SpladeHeadWeights::new(weight, bias)?.max_pool(
        hidden,
        mask,
        activation,
        max_active_dims,
        cancel,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::{splade_pool, SpladeStrategy};
    use ndarray::{Array1, Array3};

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn equals_pooling_the_fp32_logits() {
        if !amx::supported() {
            return;
        }
        let (batch, seq, dim, vocab) = (5, 9, 40, 1300);
        let hidden =
            Array3::from_shape_vec((batch, seq, dim), values(batch * seq * dim, 1)).unwrap();
        let weight = Array2::from_shape_vec((vocab, dim), values(vocab * dim, 2)).unwrap() * 0.3;
        // A negative bias so that most entries stay inactive, as in a trained SPLADE head.
        let bias = Array1::from_vec(values(vocab, 3)) - 1.5;
        let mut mask = Array2::<i64>::ones((batch, seq));
        for t in 4..seq {
            mask[[1, t]] = 0;
        }
        for t in 0..seq {
            mask[[3, t]] = 0; // a text without attended tokens
        }
        let mut logits = Array3::<f32>::zeros((batch, seq, vocab));
        for b in 0..batch {
            for t in 0..seq {
                for v in 0..vocab {
                    let h = hidden.slice(ndarray::s![b, t, ..]);
                    logits[[b, t, v]] = h.dot(&weight.row(v)) + bias[v];
                }
            }
        }
        let cancel = Cancel::new();
        for activation in [SpladeActivation::Relu, SpladeActivation::Log1pRelu] {
            for k in [None, Some(7)] {
                let want = splade_pool(
                    logits.view(),
                    mask.view(),
                    SpladeStrategy::Max,
                    activation,
                    k,
                )
                .unwrap();
                let got = splade_max_head(
                    hidden.view(),
                    mask.view(),
                    weight.view(),
                    Some(bias.view()),
                    activation,
                    k,
                    &cancel,
                )
                .unwrap()
                .unwrap();
                assert_eq!(got.indptr, want.indptr, "{activation:?} {k:?}");
                assert_eq!(got.indices, want.indices);
                for (a, b) in got.values.iter().zip(&want.values) {
                    assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} {b}");
                }
                assert!(!want.values.is_empty());
            }
        }
        // Weights prepared once give every batch what the one-call form gives it.
        let prepared = SpladeHeadWeights::new(weight.view(), Some(bias.view())).unwrap();
        assert_eq!((prepared.vocab(), prepared.dim()), (vocab, dim));
        for (lo, hi) in [(0, 2), (2, batch), (0, batch)] {
            let part = hidden.slice(ndarray::s![lo..hi, .., ..]);
            let part_mask = mask.slice(ndarray::s![lo..hi, ..]);
            let act = SpladeActivation::Log1pRelu;
            let once = splade_max_head(
                part,
                part_mask,
                weight.view(),
                Some(bias.view()),
                act,
                None,
                &cancel,
            )
            .unwrap()
            .unwrap();
            let reused = prepared
                .max_pool(part, part_mask, act, None, &cancel)
                .unwrap()
                .unwrap();
            assert_eq!(once.indptr, reused.indptr);
            assert_eq!(once.indices, reused.indices);
            assert_eq!(once.values, reused.values);
        }
        let narrow = Array3::<f32>::zeros((batch, seq, dim - 1));
        assert!(prepared
            .max_pool(
                narrow.view(),
                mask.view(),
                SpladeActivation::Relu,
                None,
                &cancel
            )
            .is_err());
        let bad = Array2::<i64>::ones((batch, seq + 1));
        assert!(splade_max_head(
            hidden.view(),
            bad.view(),
            weight.view(),
            None,
            SpladeActivation::Relu,
            None,
            &cancel
        )
        .is_err());
    }
}
