//! The only place that touches pyo3 and numpy: argument extraction, GIL release and result conversion.
//!
//! One file per kernel area, each with a `register` function the module init calls; the helpers every wrapper
//! shares live here: [`detach`] (release the GIL, map the error), [`detach_cancellable`] (the same for long
//! kernels, honouring Ctrl-C), their `_into_numpy` forms for kernels that return arrays ([`IntoNumpy`]),
//! [`search_work`] and [`to_py_err`].

mod batching;
mod cluster;
mod maxsim;
mod pooling;
mod quantize;
mod sampler;
mod similarity;
mod sparse;
mod tokenizer;
mod topk;

use crate::cancel::Cancel;
use crate::error::CoreError;
use ndarray::{Array, Dimension};
use numpy::{Element, IntoPyArray, PyArray, PyArray1, PyArray2};
use pyo3::exceptions::{PyFileNotFoundError, PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyType;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Two int64 index arrays handed back to Python (an order and its bounds, or CSR offsets and members).
type IndexArrays<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>);

/// Two matrices handed back to Python together.
type ArrayPair<'py, A, B> = (Bound<'py, PyArray2<A>>, Bound<'py, PyArray2<B>>);

/// `(ids, scores)` of a top-k search handed back to Python.
type TopKArrays<'py> = ArrayPair<'py, i64, f32>;

/// Maps a [`CoreError`] to the Python exception users catch.
pub(crate) fn to_py_err(py: Python<'_>, err: CoreError) -> PyErr {
    match err {
        CoreError::InvalidArgument(msg) | CoreError::ShapeMismatch(msg) => {
            PyValueError::new_err(msg)
        }
        CoreError::FileNotFound(msg) => PyFileNotFoundError::new_err(msg),
        CoreError::Tokenizer(msg) => tokenizer_error(py, msg),
        CoreError::Cancelled => PyKeyboardInterrupt::new_err("interrupted"),
    }
}

/// A `sentrs.exceptions.TokenizerError` (a `ValueError` subclass); a plain `ValueError` if that cannot be imported.
fn tokenizer_error(py: Python<'_>, msg: String) -> PyErr {
    let class = py
        .import("sentrs.exceptions")
        .and_then(|m| m.getattr("TokenizerError"))
        .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
    match class {
        Ok(cls) => PyErr::from_type(cls, msg),
        Err(_) => PyValueError::new_err(msg),
    }
}

/// Runs `f` with the GIL released and maps its error. For work that ends in milliseconds; long kernels go through
/// [`detach_cancellable`].
pub(crate) fn detach<T: Send>(
    py: Python<'_>,
    f: impl FnOnce() -> Result<T, CoreError> + Send,
) -> PyResult<T> {
    py.detach(f).map_err(|e| to_py_err(py, e))
}

/// Kernel results moved into numpy arrays (a move, no copy) once the GIL is held again: an owned array, a `Vec`
/// (a 1-D array), or a tuple of them (a tuple of arrays).
pub(crate) trait IntoNumpy<'py> {
    /// What Python receives.
    type Py;
    /// Moves `self` into numpy arrays.
    fn into_numpy(self, py: Python<'py>) -> Self::Py;
}

impl<'py, T: Element, D: Dimension> IntoNumpy<'py> for Array<T, D> {
    type Py = Bound<'py, PyArray<T, D>>;
    fn into_numpy(self, py: Python<'py>) -> Self::Py {
        self.into_pyarray(py)
    }
}

impl<'py, T: Element> IntoNumpy<'py> for Vec<T> {
    type Py = Bound<'py, PyArray1<T>>;
    fn into_numpy(self, py: Python<'py>) -> Self::Py {
        self.into_pyarray(py)
    }
}

impl<'py, A: IntoNumpy<'py>, B: IntoNumpy<'py>> IntoNumpy<'py> for (A, B) {
    type Py = (A::Py, B::Py);
    fn into_numpy(self, py: Python<'py>) -> Self::Py {
        (self.0.into_numpy(py), self.1.into_numpy(py))
    }
}

impl<'py, A: IntoNumpy<'py>, B: IntoNumpy<'py>, C: IntoNumpy<'py>> IntoNumpy<'py> for (A, B, C) {
    type Py = (A::Py, B::Py, C::Py);
    fn into_numpy(self, py: Python<'py>) -> Self::Py {
        (
            self.0.into_numpy(py),
            self.1.into_numpy(py),
            self.2.into_numpy(py),
        )
    }
}

/// [`detach`], then the kernel's arrays moved into numpy: the whole of a wrapper whose kernel returns arrays.
pub(crate) fn detach_into_numpy<'py, T: Send + IntoNumpy<'py>>(
    py: Python<'py>,
    f: impl FnOnce() -> Result<T, CoreError> + Send,
) -> PyResult<T::Py> {
    detach(py, f).map(|out| out.into_numpy(py))
}

/// [`detach_cancellable`], then the kernel's arrays moved into numpy.
pub(crate) fn detach_cancellable_into_numpy<'py, T: Send + IntoNumpy<'py>>(
    py: Python<'py>,
    work: usize,
    f: impl FnOnce(&Cancel) -> Result<T, CoreError> + Send,
) -> PyResult<T::Py> {
    detach_cancellable(py, work, f).map(|out| out.into_numpy(py))
}

/// The `work` of a search for [`detach_cancellable`]: `queries x corpus` pairs of `per_pair` steps each (multiply-adds
/// or words), saturating.
pub(crate) fn search_work(queries: usize, corpus: usize, per_pair: usize) -> usize {
    queries.saturating_mul(corpus).saturating_mul(per_pair)
}

/// How often a cancellable call looks for Ctrl-C while its kernel runs.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Work (multiply-adds, or word comparisons) from which a cancellable call starts its worker thread (tens of
/// microseconds): below it the kernel ends within about a millisecond and runs on the calling thread, and Ctrl-C
/// is taken when it returns, as for any other call.
const CANCELLABLE_MIN_WORK: usize = 1 << 26;

/// Stack of the thread a cancellable kernel runs on: that of a typical main thread, where kernels ran before.
const WORKER_STACK: usize = 8 << 20;

/// Runs a long kernel `f` with the GIL released, honouring Ctrl-C, and maps its error. `work` estimates its size
/// (see [`CANCELLABLE_MIN_WORK`]); smaller calls go through [`detach`] with a flag nobody sets.
///
/// Python runs signal handlers only on its main thread and only with the GIL held, so `f` runs on a scoped worker
/// thread while the calling thread waits with the GIL released and, every [`SIGNAL_POLL`], takes it back for
/// `py.check_signals()`. When a handler raises (`KeyboardInterrupt` for Ctrl-C), `f`'s [`Cancel`] is set, the call
/// waits for the kernel to stop at its next check between blocks and raises the handler's exception. Called off the
/// main thread, `check_signals` does nothing and the call simply runs to the end. A panic in `f` resumes here; a
/// worker thread that cannot be started raises `OSError`.
pub(crate) fn detach_cancellable<T: Send>(
    py: Python<'_>,
    work: usize,
    f: impl FnOnce(&Cancel) -> Result<T, CoreError> + Send,
) -> PyResult<T> {
    let cancel = Cancel::new();
    if work < CANCELLABLE_MIN_WORK {
        return detach(py, || f(&cancel));
    }
    let done = AtomicBool::new(false);
    let (cancel_ref, done_ref) = (&cancel, &done);
    let caller = std::thread::current();
    let (joined, interrupt) = std::thread::scope(|scope| -> PyResult<_> {
        let worker = std::thread::Builder::new()
            .name("sentrs-kernel".into())
            .stack_size(WORKER_STACK)
            .spawn_scoped(scope, move || {
                let _wake = WakeWhenDone {
                    done: done_ref,
                    caller,
                };
                f(cancel_ref)
            })?;
        let mut interrupt = None;
        while !wait_until_done(py, done_ref) {
            if let Err(err) = py.check_signals() {
                cancel_ref.cancel();
                interrupt = Some(err);
                break;
            }
        }
        Ok((py.detach(move || worker.join()), interrupt))
    })?;
    let outcome = match joined {
        Ok(outcome) => outcome,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    match interrupt {
        Some(err) => Err(err),
        None => outcome.map_err(|e| to_py_err(py, e)),
    }
}

/// Marks the worker of [`detach_cancellable`] done and wakes the caller, also when the worker panics.
struct WakeWhenDone<'a> {
    done: &'a AtomicBool,
    caller: Thread,
}

impl Drop for WakeWhenDone<'_> {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Release);
        self.caller.unpark();
    }
}

/// Waits with the GIL released until `done` is set or [`SIGNAL_POLL`] has passed; returns whether it is set.
fn wait_until_done(py: Python<'_>, done: &AtomicBool) -> bool {
    py.detach(|| {
        let deadline = Instant::now() + SIGNAL_POLL;
        while !done.load(Ordering::Acquire) {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            std::thread::park_timeout(deadline - now);
        }
        true
    })
}

/// Turns parallelism off in a forked child (called from `os.register_at_fork`).
#[pyfunction]
fn _mark_forked() {
    crate::parallel::mark_forked();
}

/// Number of threads the core's pool runs.
#[pyfunction]
fn num_threads() -> usize {
    crate::parallel::current_num_threads()
}

/// The SIMD level the kernels run at now (`scalar`, `avx2`, `avx2_vnni` or `avx512`).
#[pyfunction]
fn simd_level() -> &'static str {
    crate::simd::active().name()
}

/// The widest SIMD level this CPU runs.
#[pyfunction]
fn detected_simd_level() -> &'static str {
    crate::simd::detected().name()
}

/// Every SIMD level this CPU runs, narrowest first.
#[pyfunction]
fn supported_simd_levels() -> Vec<&'static str> {
    crate::simd::supported_levels()
        .into_iter()
        .map(|l| l.name())
        .collect()
}

/// Caps the SIMD level of every kernel (process-wide); `None` goes back to `SENTRS_SIMD` (or no cap).
#[pyfunction]
#[pyo3(signature = (level=None))]
fn set_simd_ceiling(level: Option<&str>) -> PyResult<()> {
    let parsed = match level {
        None => None,
        Some(name) => Some(crate::simd::Level::parse(name).ok_or_else(|| {
            let names: Vec<&str> = crate::simd::Level::ALL.iter().map(|l| l.name()).collect();
            PyValueError::new_err(format!(
                "level must be one of {names:?} or None, got {name:?}"
            ))
        })?),
    };
    crate::simd::set_ceiling(parsed);
    Ok(())
}

/// The CPU features the kernels dispatch on, as `{name: present}`.
#[pyfunction]
fn cpu_features() -> Vec<(&'static str, bool)> {
    crate::simd::feature_report()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(_mark_forked, m)?)?;
    m.add_function(wrap_pyfunction!(num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(detected_simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(supported_simd_levels, m)?)?;
    m.add_function(wrap_pyfunction!(set_simd_ceiling, m)?)?;
    m.add_function(wrap_pyfunction!(cpu_features, m)?)?;
    tokenizer::register(m)?;
    batching::register(m)?;
    pooling::register(m)?;
    similarity::register(m)?;
    maxsim::register(m)?;
    topk::register(m)?;
    cluster::register(m)?;
    sparse::register(m)?;
    quantize::register(m)?;
    sampler::register(m)?;
    Ok(())
}
