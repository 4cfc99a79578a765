//! Cooperative cancellation of long kernels.
//!
//! A search over a large corpus can run for seconds. Such kernels take a [`Cancel`] and check it between blocks of
//! work; once it is set they stop at the next check and return [`CoreError::Cancelled`], dropping their partial
//! results. The Python bindings set it when Ctrl-C arrives while a kernel runs with the GIL released.

use crate::error::{CoreError, CoreResult};
use std::sync::atomic::{AtomicBool, Ordering};

/// A flag a caller sets to ask running kernels to stop; kernels only read it.
#[derive(Debug, Default)]
pub struct Cancel {
    flag: AtomicBool,
}

impl Cancel {
    /// A flag that is not set.
    pub const fn new() -> Self {
        Cancel {
            flag: AtomicBool::new(false),
        }
    }

    /// Asks every kernel watching this flag to stop at its next check.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Relaxed);
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// `Err(CoreError::Cancelled)` once the flag is set: the check a kernel makes between blocks.
    pub fn check(&self) -> CoreResult<()> {
        if self.is_cancelled() {
            Err(CoreError::Cancelled)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_fails_once_cancelled() {
        let cancel = Cancel::new();
        assert_eq!(cancel.check(), Ok(()));
        cancel.cancel();
        assert!(cancel.is_cancelled());
        assert_eq!(cancel.check(), Err(CoreError::Cancelled));
    }
}
