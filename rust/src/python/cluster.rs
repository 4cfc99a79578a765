//! Python wrappers of [`crate::cluster`]: community detection and paraphrase-pair mining.

use super::{detach, detach_into_numpy, IndexArrays};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

/// Community detection: `(offsets, members)` in CSR form; community c is `members[offsets[c]:offsets[c+1]]`.
#[pyfunction]
#[pyo3(signature = (embeddings, threshold=0.75, min_community_size=10, batch_size=1024))]
fn community_detection<'py>(
    py: Python<'py>,
    embeddings: PyReadonlyArray2<'py, f32>,
    threshold: f32,
    min_community_size: usize,
    batch_size: usize,
) -> PyResult<IndexArrays<'py>> {
    let x = embeddings.as_array();
    let communities = detach(py, || {
        crate::cluster::community_detection(x, threshold, min_community_size, batch_size)
    })?;
    let mut offsets = Vec::with_capacity(communities.len() + 1);
    offsets.push(0i64);
    let mut members = Vec::new();
    for community in communities {
        members.extend(community.into_iter().map(|j| j as i64));
        offsets.push(members.len() as i64);
    }
    Ok((offsets.into_pyarray(py), members.into_pyarray(py)))
}

/// Paraphrase-mining pairs from neighbour lists: `(scores float32, lo int64, hi int64)`, best first.
#[pyfunction]
fn mine_pairs<'py>(
    py: Python<'py>,
    ids: PyReadonlyArray2<'py, i64>,
    scores: PyReadonlyArray2<'py, f32>,
    max_pairs: usize,
) -> PyResult<MinedPairs<'py>> {
    let (i, s) = (ids.as_array(), scores.as_array());
    detach_into_numpy(py, || crate::cluster::mine_pairs(i, s, max_pairs))
}

/// `(scores, lo, hi)` arrays of mined pairs.
type MinedPairs<'py> = (
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
);

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(community_detection, m)?)?;
    m.add_function(wrap_pyfunction!(mine_pairs, m)?)?;
    Ok(())
}
