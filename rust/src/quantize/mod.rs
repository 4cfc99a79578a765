//! Search over quantised embeddings: Hamming distance over packed bits, inner products over int8/uint8 codes, and
//! float rescoring of their candidates.
//!
//! Scalar and binary quantisation themselves are cheap numpy one-liners kept in Python; what needs native speed
//! is scanning a large quantised corpus. Both searches are exact; ties break by the lower corpus index.
//!
//! - `hamming`: [`hamming_topk`], the packed corpus and the search loop, over the popcount kernels of
//!   `hamming_scan` and the best-`k` selection of `nearest`.
//! - `code_dot`: [`code_dot_topk`] over int8/uint8 codes ([`Code`]).
//! - `rescore`: [`rescore_bits`] and [`rescore_rows`], float scores of candidates.

mod code_dot;
mod hamming;
mod hamming_scan;
mod nearest;
mod rescore;

pub use code_dot::{code_dot_topk, Code};
pub use hamming::hamming_topk;
pub use rescore::{rescore_bits, rescore_rows};
