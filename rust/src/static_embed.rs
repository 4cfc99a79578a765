//! Static embeddings: a text's embedding is the mean of its tokens' rows in a `(vocab, dim)` table (an embedding
//! bag, as `torch.nn.EmbeddingBag(mode="mean")`), with no model forward pass.
//!
//! Tokenizing is then most of the work, so BERT-style WordPiece tokenizers get a fast path that gives the same ids
//! as the `tokenizers` pipeline: for a text of printable ASCII (plus tab, newline, carriage return) with no
//! character that could start an added token, `BertNormalizer` is at most an ASCII lower-casing, `BertPreTokenizer`
//! splits on whitespace and ASCII punctuation, and each word is either a vocabulary entry (one id) or goes through
//! the WordPiece model itself. Every other text, and every other tokenizer, runs the full `tokenizers` pipeline.

use crate::error::{invalid, CoreResult};
use crate::parallel;
use crate::tokenize::{BatchTokenizer, Side};
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use tokenizers::models::ModelWrapper;
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::Model;

/// FNV-1a: vocabulary keys are short strings, for which it beats SipHash several times over.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type FastMap = HashMap<Box<str>, u32, BuildHasherDefault<Fnv>>;

/// The ASCII fast path of a `BertNormalizer` + `BertPreTokenizer` + `WordPiece` tokenizer.
pub struct FastWordPiece {
    vocab: FastMap,
    lowercase: bool,
    max_input_chars_per_word: usize,
    /// ASCII bytes that send a text to the full pipeline: controls other than tab/newline/CR, and the first
    /// character (both cases) of every added token.
    slow_bytes: [bool; 128],
}

impl FastWordPiece {
    /// The fast path for `tokenizer`, or `None` when its pipeline is not the BERT one this path reproduces.
    pub fn new(tokenizer: &BatchTokenizer) -> Option<Self> {
        let inner = tokenizer.inner();
        let lowercase = match inner.get_normalizer() {
            // Without `clean_text`, control characters would reach WordPiece: texts with them take the full
            // pipeline either way, and printable ASCII is unaffected.
            Some(NormalizerWrapper::BertNormalizer(n)) => n.lowercase,
            _ => return None,
        };
        if !matches!(
            inner.get_pre_tokenizer(),
            Some(PreTokenizerWrapper::BertPreTokenizer(_))
        ) {
            return None;
        }
        let wp = match inner.get_model() {
            ModelWrapper::WordPiece(wp) => wp,
            _ => return None,
        };
        let mut slow_bytes = [false; 128];
        for (b, slot) in slow_bytes.iter_mut().enumerate() {
            *slot = (b < 0x20 && !matches!(b, 0x09 | 0x0a | 0x0d)) || b == 0x7f;
        }
        for token in inner.get_added_tokens_decoder().values() {
            match token.content.chars().next() {
                Some(c) if c.is_ascii() => {
                    slow_bytes[c.to_ascii_lowercase() as usize] = true;
                    slow_bytes[c.to_ascii_uppercase() as usize] = true;
                }
                Some(_) => {} // a non-ASCII first character never occurs in an ASCII text
                None => {}
            }
        }
        let vocab: FastMap = wp
            .get_vocab()
            .into_iter()
            .map(|(k, v)| (k.into_boxed_str(), v))
            .collect();
        Some(FastWordPiece {
            vocab,
            lowercase,
            max_input_chars_per_word: wp.max_input_chars_per_word,
            slow_bytes,
        })
    }

    /// Appends the ids of `text` to `out` and returns true, or returns false (leaving `out` as it was) when the
    /// text needs the full pipeline. `buf` is scratch space reused across calls.
    pub fn encode(
        &self,
        tokenizer: &BatchTokenizer,
        text: &str,
        buf: &mut Vec<u8>,
        out: &mut Vec<u32>,
    ) -> CoreResult<bool> {
        let bytes = text.as_bytes();
        if bytes
            .iter()
            .any(|&b| b >= 0x80 || self.slow_bytes[b as usize])
        {
            return Ok(false);
        }
        buf.clear();
        buf.extend_from_slice(bytes);
        if self.lowercase {
            buf.make_ascii_lowercase();
        }
        let start_len = out.len();
        let mut start = 0;
        let n = buf.len();
        let mut i = 0;
        while i <= n {
            let boundary = i == n || {
                let b = buf[i];
                b == b' ' || b == b'\t' || b == b'\n' || b == b'\r' || b.is_ascii_punctuation()
            };
            if boundary {
                if start < i {
                    self.push_word(tokenizer, &buf[start..i], out, start_len)?;
                }
                if i < n && buf[i].is_ascii_punctuation() {
                    self.push_word(tokenizer, &buf[i..i + 1], out, start_len)?;
                }
                start = i + 1;
            }
            i += 1;
        }
        Ok(true)
    }

    fn push_word(
        &self,
        tokenizer: &BatchTokenizer,
        word: &[u8],
        out: &mut Vec<u32>,
        start_len: usize,
    ) -> CoreResult<()> {
        // ASCII only, so this never fails and bytes are characters.
        let word = std::str::from_utf8(word).map_err(|e| invalid(e.to_string()))?;
        if word.len() <= self.max_input_chars_per_word {
            if let Some(&id) = self.vocab.get(word) {
                out.push(id);
                return Ok(());
            }
        }
        let model = tokenizer.inner().get_model();
        match model.tokenize(word) {
            Ok(tokens) => {
                out.extend(tokens.iter().map(|t| t.id));
                Ok(())
            }
            Err(e) => {
                out.truncate(start_len);
                Err(crate::error::CoreError::Tokenizer(format!(
                    "could not tokenize the word {word:?}: {e}"
                )))
            }
        }
    }
}

/// Cuts `ids` to `max_length` from `side`, as single-sequence truncation does.
fn truncate(ids: &mut Vec<u32>, max_length: Option<usize>, side: Side) {
    if let Some(max) = max_length {
        if ids.len() > max {
            match side {
                Side::Right => ids.truncate(max),
                Side::Left => {
                    ids.drain(..ids.len() - max);
                }
            }
        }
    }
}

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
        if fast.encode(tokenizer, text, buf, out)? {
            let settings = tokenizer.settings();
            truncate(out, settings.max_length, settings.truncation_side);
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
    fast: Option<&FastWordPiece>,
    texts: &[String],
    weights: ArrayView2<'_, f32>,
) -> CoreResult<Array2<f32>> {
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
    use crate::tokenize::TokenizerSettings;
    use ndarray::array;

    fn bert_json(lowercase: bool) -> String {
        let vocab = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", ".", ",", "un",
            "##believ", "##able", "!", "a", "##b", "é",
        ];
        let entries: Vec<String> = vocab
            .iter()
            .enumerate()
            .map(|(i, t)| format!("\"{t}\": {i}"))
            .collect();
        format!(
            r###"{{"version": "1.0", "truncation": null, "padding": null,
            "added_tokens": [{{"id": 4, "content": "[MASK]", "single_word": false, "lstrip": false, "rstrip": false,
                               "normalized": false, "special": true}}],
            "normalizer": {{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                            "strip_accents": null, "lowercase": {lowercase}}},
            "pre_tokenizer": {{"type": "BertPreTokenizer"}},
            "post_processor": null, "decoder": null,
            "model": {{"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                       "max_input_chars_per_word": 100, "vocab": {{{}}}}}}}"###,
            entries.join(", ")
        )
    }

    fn tok(lowercase: bool, max_length: Option<usize>) -> BatchTokenizer {
        let settings = TokenizerSettings {
            max_length,
            ..TokenizerSettings::default()
        };
        BatchTokenizer::from_json(&bert_json(lowercase), settings).unwrap()
    }

    fn full(t: &BatchTokenizer, text: &str) -> Vec<u32> {
        t.encode(&[text.to_string()], None, false).unwrap().ids[0].clone()
    }

    fn fast_ids(t: &BatchTokenizer, f: &FastWordPiece, text: &str) -> Vec<u32> {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        encode_without_special_tokens(t, Some(f), text, &mut buf, &mut out).unwrap();
        out
    }

    #[test]
    fn fast_path_matches_the_pipeline() {
        for lowercase in [true, false] {
            for max_length in [None, Some(3)] {
                let t = tok(lowercase, max_length);
                let f = FastWordPiece::new(&t).expect("a BERT pipeline");
                for text in [
                    "The cat sat.",
                    "the   cat,sat!!",
                    "unbelievable",
                    "xyz ab",
                    "",
                    "   ",
                    "tab\tnew\nline\rcr",
                    "a [MASK] b",
                    "caf\u{e9} the",
                    "bell\u{7}char",
                    &"a".repeat(150),
                ] {
                    assert_eq!(
                        fast_ids(&t, &f, text),
                        full(&t, text),
                        "text {text:?}, lowercase {lowercase}, max_length {max_length:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn other_pipelines_have_no_fast_path() {
        let json = bert_json(true).replace(
            r#"{"type": "BertPreTokenizer"}"#,
            r#"{"type": "Whitespace"}"#,
        );
        let t = BatchTokenizer::from_json(&json, TokenizerSettings::default()).unwrap();
        assert!(FastWordPiece::new(&t).is_none());
    }

    #[test]
    fn mean_of_rows_and_empty_bags() {
        let t = tok(true, None);
        let f = FastWordPiece::new(&t);
        let mut weights = Array2::<f32>::zeros((17, 2));
        weights.row_mut(5).assign(&array![1.0, 2.0]); // the
        weights.row_mut(6).assign(&array![3.0, 6.0]); // cat
        let texts = vec!["the cat".to_string(), "".to_string(), "the".to_string()];
        let out = embed_mean(&t, f.as_ref(), &texts, weights.view()).unwrap();
        assert_eq!(out, array![[2.0, 4.0], [0.0, 0.0], [1.0, 2.0]]);
    }

    #[test]
    fn ids_outside_the_table_are_an_error() {
        let t = tok(true, None);
        let weights = Array2::<f32>::zeros((3, 2));
        let err = embed_mean(&t, None, &["the".to_string()], weights.view()).unwrap_err();
        assert!(err.to_string().contains("outside the embedding table"));
    }

    #[test]
    fn parallel_chunks_match_serial() {
        let t = tok(true, None);
        let f = FastWordPiece::new(&t);
        let weights = Array2::from_shape_fn((17, 3), |(i, j)| (i * 3 + j) as f32);
        let texts: Vec<String> = (0..1000)
            .map(|i| ["the cat", "sat.", "unbelievable!", "caf\u{e9}"][i % 4].to_string())
            .collect();
        let out = embed_mean(&t, f.as_ref(), &texts, weights.view()).unwrap();
        for (i, text) in texts.iter().enumerate() {
            let one = embed_mean(&t, None, std::slice::from_ref(text), weights.view()).unwrap();
            assert_eq!(out.row(i), one.row(0));
        }
    }

    proptest::proptest! {
        #[test]
        fn fast_path_matches_the_pipeline_on_any_text(text in "[a-zA-Z .,!#\\[\\]\t\n\u{1}\u{e9}]{0,40}", lowercase: bool) {
            let t = tok(lowercase, Some(7));
            let f = FastWordPiece::new(&t).unwrap();
            proptest::prop_assert_eq!(fast_ids(&t, &f, &text), full(&t, &text));
        }
    }
}
