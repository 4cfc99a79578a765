//! The Rust core of sentrs: host-side number work for sentence embeddings.
//!
//! Each module is a set of pure kernels over slices and `ndarray` views that return [`error::CoreResult`].
//! The Python bindings live in `python/` (feature `python`) and only extract arguments, release the GIL and
//! convert results; `cargo test --no-default-features` needs no Python.

pub mod batching;
pub mod cancel;
pub mod cluster;
pub mod error;
pub mod fast_wordpiece;
pub mod maxsim;
pub mod parallel;
pub mod pooling;
pub mod quantize;
pub mod sampler;
pub mod simd;
pub mod similarity;
pub mod sparse;
pub mod sparse_head;
pub mod static_embed;
pub mod tokenize;
pub mod topk;

#[cfg(feature = "python")]
mod python;
