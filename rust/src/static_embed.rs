//! Static embeddings: a text's embedding is the mean of its tokens' rows in a `(vocab, dim)` table (an embedding
//! bag, as `torch.nn.EmbeddingBag(mode="mean")`), with no model forward pass.
//!
//! Tokenizing is then most of the work: BERT-style WordPiece tokenizers take the exact ASCII fast path of
//! [`crate::fast_wordpiece`], every other text and tokenizer the full `tokenizers` pipeline.

use crate::error::{invalid, CoreResult};
use crate::fast_wordpiece::FastWordPiece;
use crate::parallel;
use crate::tokenize::{truncate_ids, BatchTokenizer};
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

/// Token ids of one text without special tokens: the fast path where it applies, else the full pipeline.
pub fn encode_without_special_tokens(
    tokenizer: &BatchTokenizer,
    fast: Option<&FastWordPiece>,
    text: &str,
    buf: &mut Vec<u8>,
    out: &mut Vec<u32>,
) -> CoreResult<()> {
    out.clear();
    if let Some(fast) = fast {
        if fast.encode_ids(tokenizer.inner(), text, buf, out)? {
            let settings = tokenizer.settings();
            truncate_ids(out, settings.max_length, settings.truncation_side);
            return Ok(());
        }
    }
    let encoded = tokenizer.encode(&[text.to_string()], None, false)?;
    out.extend_from_slice(&encoded.ids[0]);
    Ok(())
}

/// Adds the mean of `weights` rows `ids` into `row` (zeros for no ids); errors on an id outside the table.
pub fn bag_mean_into(
    ids: &[u32],
    weights: &ArrayView2<'_, f32>,
    row: &mut [f32],
) -> CoreResult<()> {
    row.fill(0.0);
    if ids.is_empty() {
        return Ok(());
    }
    let vocab = weights.nrows();
    for &id in ids {
        let id = id as usize;
        if id >= vocab {
            return Err(invalid(format!(
                "token id {id} is outside the embedding table of {vocab} rows; the tokenizer and the weights \
                 do not match"
            )));
        }
        let w = weights.row(id);
        match w.as_slice() {
            Some(w) => row.iter_mut().zip(w).for_each(|(r, &x)| *r += x),
            None => row.iter_mut().zip(w.iter()).for_each(|(r, &x)| *r += x),
        }
    }
    let scale = 1.0 / ids.len() as f32;
    row.iter_mut().for_each(|r| *r *= scale);
    Ok(())
}

/// `(len(texts), dim)` mean embeddings of `texts` (tokenized without special tokens) over the `(vocab, dim)` table.
pub fn embed_mean(
    tokenizer: &BatchTokenizer,
    texts: &[String],
    weights: ArrayView2<'_, f32>,
) -> CoreResult<Array2<f32>> {
    let fast = if texts.is_empty() {
        None
    } else {
        tokenizer.fast_path()
    };
    let dim = weights.ncols();
    let mut out = Array2::<f32>::zeros((texts.len(), dim));
    if texts.is_empty() || dim == 0 {
        // Still tokenize, so an id outside the table is reported as for any other shape.
        if dim == 0 {
            let mut buf = Vec::new();
            let mut ids = Vec::new();
            for text in texts {
                encode_without_special_tokens(tokenizer, fast, text, &mut buf, &mut ids)?;
                bag_mean_into(&ids, &weights, &mut [])?;
            }
        }
        return Ok(out);
    }
    let slice = out
        .as_slice_mut()
        .ok_or_else(|| invalid("output is not contiguous"))?;
    let rows_per_task = 256;
    let work = |(chunk_idx, chunk): (usize, &mut [f32])| -> CoreResult<()> {
        let mut buf = Vec::with_capacity(256);
        let mut ids = Vec::with_capacity(64);
        let first = chunk_idx * rows_per_task;
        for (j, row) in chunk.chunks_mut(dim).enumerate() {
            encode_without_special_tokens(tokenizer, fast, &texts[first + j], &mut buf, &mut ids)?;
            bag_mean_into(&ids, &weights, row)?;
        }
        Ok(())
    };
    if parallel::parallel_enabled() && texts.len() > rows_per_task {
        parallel::install(|| {
            slice
                .par_chunks_mut(rows_per_task * dim)
                .enumerate()
                .try_for_each(work)
        })?;
    } else {
        slice
            .chunks_mut(rows_per_task * dim)
            .enumerate()
            .try_for_each(work)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fast_wordpiece::tests::tok;
    use ndarray::array;

    #[test]
    fn mean_of_rows_and_empty_bags() {
        let t = tok(true, None);
        let mut weights = Array2::<f32>::zeros((17, 2));
        weights.row_mut(5).assign(&array![1.0, 2.0]); // the
        weights.row_mut(6).assign(&array![3.0, 6.0]); // cat
        let texts = vec!["the cat".to_string(), "".to_string(), "the".to_string()];
        let out = embed_mean(&t, &texts, weights.view()).unwrap();
        assert_eq!(out, array![[2.0, 4.0], [0.0, 0.0], [1.0, 2.0]]);
    }

    #[test]
    fn ids_outside_the_table_are_an_error() {
        let t = tok(true, None);
        let weights = Array2::<f32>::zeros((3, 2));
        let err = embed_mean(&t, &["the".to_string()], weights.view()).unwrap_err();
        assert!(err.to_string().contains("outside the embedding table"));
    }

    #[test]
    fn parallel_chunks_match_one_text_at_a_time() {
        let t = tok(true, Some(3));
        let weights = Array2::from_shape_fn((17, 3), |(i, j)| (i * 3 + j) as f32);
        let texts: Vec<String> = (0..1000)
            .map(|i| {
                ["the cat", "sat.", "unbelievable!", "caf\u{e9} the cat sat"][i % 4].to_string()
            })
            .collect();
        let out = embed_mean(&t, &texts, weights.view()).unwrap();
        for (i, text) in texts.iter().enumerate() {
            let ids = &t
                .encode(std::slice::from_ref(text), None, false)
                .unwrap()
                .ids[0];
            let mut row = vec![0.0; 3];
            bag_mean_into(ids, &weights.view(), &mut row).unwrap();
            assert_eq!(out.row(i).to_vec(), row, "text {text:?}");
        }
    }
}
