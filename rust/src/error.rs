//! The one error type of the core. The Python wrappers map each variant to a Python exception.

use thiserror::Error;

/// Everything a kernel can refuse. Messages name the argument, what was received and what was expected.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CoreError {
    /// An argument has an invalid value (maps to `ValueError`).
    #[error("{0}")]
    InvalidArgument(String),
    /// Two inputs disagree in shape (maps to `ValueError`).
    #[error("{0}")]
    ShapeMismatch(String),
    /// A file could not be found (maps to `FileNotFoundError`).
    #[error("{0}")]
    FileNotFound(String),
    /// A tokenizer file could not be read or the tokenizer failed (maps to `sentrs.exceptions.TokenizerError`).
    #[error("{0}")]
    Tokenizer(String),
    /// A long kernel stopped early because its [`crate::cancel::Cancel`] flag was set (Ctrl-C in Python; maps to
    /// `KeyboardInterrupt`).
    #[error("interrupted")]
    Cancelled,
}

/// Result alias used by every kernel.
pub type CoreResult<T> = Result<T, CoreError>;

/// `Ok` when two sizes that must agree do, else a [`CoreError::ShapeMismatch`] reading `"{what}, got {a} and {b}"`
/// (`what` as in `"query and corpus embeddings must have the same dimension"`).
pub fn check_same_size(what: &str, a: usize, b: usize) -> CoreResult<()> {
    if a != b {
        return Err(CoreError::ShapeMismatch(format!("{what}, got {a} and {b}")));
    }
    Ok(())
}

/// Shorthand for an [`CoreError::InvalidArgument`].
pub fn invalid(msg: impl Into<String>) -> CoreError {
    CoreError::InvalidArgument(msg.into())
}
