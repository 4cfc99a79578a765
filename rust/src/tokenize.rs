//! Batch tokenization from a `tokenizer.json` straight into padded `i64` matrices.
//!
//! The padding and truncation settings stored in the file are ignored: the caller states them (the reference
//! pads to the longest text of a batch and truncates at the model's `max_seq_length`, whatever the file says).
//! Encoding happens once for the whole input, unpadded; padding happens per batch, after length-aware
//! batching, so no batch is padded further than its own longest row.

use crate::error::{check_same_size, invalid, CoreError, CoreResult};
use crate::fast_wordpiece::FastWordPiece;
use crate::parallel;
use ndarray::Array2;
use rayon::prelude::*;
use std::path::Path;
use std::sync::OnceLock;
use tokenizers::{
    EncodeInput, Encoding, PostProcessor, Tokenizer, TruncationDirection, TruncationParams,
    TruncationStrategy,
};

/// Which side padding or truncation acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Pad or cut at the end.
    Right,
    /// Pad or cut at the start.
    Left,
}

impl Side {
    /// Parses `"right"` or `"left"`; `what` names the argument in the error.
    pub fn parse(value: &str, what: &str) -> CoreResult<Self> {
        match value {
            "right" => Ok(Side::Right),
            "left" => Ok(Side::Left),
            other => Err(invalid(format!(
                "{what} must be 'right' or 'left', got '{other}'"
            ))),
        }
    }
}

/// How text pairs are cut down to `max_length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// Remove tokens from the longer of the two texts, one at a time (the reference's default).
    LongestFirst,
    /// Only cut the first text.
    OnlyFirst,
    /// Only cut the second text.
    OnlySecond,
}

impl Truncation {
    /// Parses `"longest_first"`, `"only_first"` or `"only_second"`.
    pub fn parse(value: &str) -> CoreResult<Self> {
        match value {
            "longest_first" => Ok(Truncation::LongestFirst),
            "only_first" => Ok(Truncation::OnlyFirst),
            "only_second" => Ok(Truncation::OnlySecond),
            other => Err(invalid(format!(
                "truncation_strategy must be 'longest_first', 'only_first' or 'only_second', got '{other}'"
            ))),
        }
    }
}

/// Settings the caller states explicitly, overriding whatever `tokenizer.json` carries.
#[derive(Debug, Clone)]
pub struct TokenizerSettings {
    /// Cut every encoded row (special tokens included) to at most this many tokens; `None` cuts nothing.
    pub max_length: Option<usize>,
    /// Truncation strategy for pairs.
    pub truncation: Truncation,
    /// Side to cut from.
    pub truncation_side: Side,
    /// Id written into padded positions of `input_ids`.
    pub pad_id: u32,
    /// Id written into padded positions of `token_type_ids`.
    pub pad_type_id: u32,
    /// Side to pad on.
    pub padding_side: Side,
}

impl Default for TokenizerSettings {
    fn default() -> Self {
        TokenizerSettings {
            max_length: None,
            truncation: Truncation::LongestFirst,
            truncation_side: Side::Right,
            pad_id: 0,
            pad_type_id: 0,
            padding_side: Side::Right,
        }
    }
}

/// How a batch is padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// Pad to the longest row of the batch.
    Longest,
    /// Pad every row to exactly this length (rows must not be longer).
    Fixed(usize),
}

/// A tokenizer with explicit truncation and no built-in padding.
pub struct BatchTokenizer {
    inner: Tokenizer,
    settings: TokenizerSettings,
    fast: OnceLock<Option<FastWordPiece>>,
    /// `inner` without truncation, for the texts of pairs cut `longest_first` (see [`Self::encode_pair_longest_first`]).
    untruncated: OnceLock<Tokenizer>,
}

/// Ragged token ids of a whole input, before padding.
#[derive(Debug, Clone, Default)]
pub struct EncodedBatch {
    /// Token ids per row.
    pub ids: Vec<Vec<u32>>,
    /// Token type (segment) ids per row.
    pub type_ids: Vec<Vec<u32>>,
}

/// Padded arrays for one batch, ready for a model's forward pass.
#[derive(Debug, Clone, PartialEq)]
pub struct PaddedBatch {
    /// `(batch, seq)` token ids.
    pub input_ids: Array2<i64>,
    /// `(batch, seq)`: 1 for real tokens, 0 for padding.
    pub attention_mask: Array2<i64>,
    /// `(batch, seq)` segment ids.
    pub token_type_ids: Array2<i64>,
}

impl BatchTokenizer {
    /// Loads a tokenizer from the JSON text of a `tokenizer.json`.
    pub fn from_json(json: &str, settings: TokenizerSettings) -> CoreResult<Self> {
        let inner: Tokenizer = json.parse().map_err(|e| {
            CoreError::Tokenizer(format!("could not parse the tokenizer JSON: {e}"))
        })?;
        Self::configure(inner, settings)
    }

    /// Loads a tokenizer from a `tokenizer.json` file.
    pub fn from_file(path: &Path, settings: TokenizerSettings) -> CoreResult<Self> {
        if !path.is_file() {
            return Err(CoreError::FileNotFound(format!(
                "tokenizer file not found: {}",
                path.display()
            )));
        }
        let inner = Tokenizer::from_file(path).map_err(|e| {
            CoreError::Tokenizer(format!(
                "could not load tokenizer from {}: {e}",
                path.display()
            ))
        })?;
        Self::configure(inner, settings)
    }

    fn configure(mut inner: Tokenizer, settings: TokenizerSettings) -> CoreResult<Self> {
        inner.with_padding(None);
        let added = inner
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(false));
        let truncation = match settings.max_length {
            Some(0) => return Err(invalid("max_length must be >= 1, got 0")),
            Some(max_length) if max_length < added => {
                return Err(invalid(format!(
                    "max_length must be at least the {added} special tokens the tokenizer adds to a text, got \
                     {max_length}"
                )))
            }
            Some(max_length) => Some(TruncationParams {
                max_length,
                strategy: match settings.truncation {
                    Truncation::LongestFirst => TruncationStrategy::LongestFirst,
                    Truncation::OnlyFirst => TruncationStrategy::OnlyFirst,
                    Truncation::OnlySecond => TruncationStrategy::OnlySecond,
                },
                stride: 0,
                direction: match settings.truncation_side {
                    Side::Right => TruncationDirection::Right,
                    Side::Left => TruncationDirection::Left,
                },
            }),
            None => None,
        };
        inner
            .with_truncation(truncation)
            .map_err(|e| CoreError::Tokenizer(format!("invalid truncation settings: {e}")))?;
        Ok(BatchTokenizer {
            inner,
            settings,
            fast: OnceLock::new(),
            untruncated: OnceLock::new(),
        })
    }

    /// The `tokenizers` tokenizer inside (truncation set, padding off).
    pub(crate) fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// The settings in force.
    pub fn settings(&self) -> &TokenizerSettings {
        &self.settings
    }

    /// Id of a token in the vocabulary (added tokens included).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Vocabulary size, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The exact ASCII fast path of BERT-style WordPiece tokenizers, built on first use (`None`: another pipeline).
    pub fn fast_path(&self) -> Option<&FastWordPiece> {
        self.fast
            .get_or_init(|| FastWordPiece::new(&self.inner))
            .as_ref()
    }

    /// Runs every text through the full `tokenizers` pipeline from now on (for comparisons); no effect once the fast
    /// path has been used.
    pub fn disable_fast_path(&self) {
        let _ = self.fast.set(None);
    }

    /// Ids and type ids of one single text through the fast path, truncated and with the template's special tokens;
    /// `None` when the text (or this tokenizer) needs the full pipeline.
    fn encode_single_fast(
        &self,
        fast: &FastWordPiece,
        text: &str,
        add_special_tokens: bool,
        buf: &mut Vec<u8>,
    ) -> CoreResult<Option<(Vec<u32>, Vec<u32>)>> {
        // `only_second` truncation of a lone text is an error in `tokenizers` (when it must cut): the full pipeline
        // reports it.
        if self.settings.truncation == Truncation::OnlySecond && self.settings.max_length.is_some()
        {
            return Ok(None);
        }
        let template = if add_special_tokens {
            match fast.template() {
                Some(t) => Some(t),
                None => return Ok(None),
            }
        } else {
            None
        };
        let added = template.map_or(0, |t| t.prefix.len() + t.suffix.len());
        let budget = match self.settings.max_length {
            Some(max) if max <= added => return Ok(None),
            Some(max) => Some(max - added),
            None => None,
        };
        let mut content = Vec::new();
        if !fast.encode_ids(&self.inner, text, buf, &mut content)? {
            return Ok(None);
        }
        truncate_ids(&mut content, budget, self.settings.truncation_side);
        Ok(Some(match template {
            None => {
                let types = vec![0; content.len()];
                (content, types)
            }
            Some(t) => {
                let mut ids = Vec::with_capacity(content.len() + added);
                ids.extend_from_slice(&t.prefix);
                ids.extend_from_slice(&content);
                ids.extend_from_slice(&t.suffix);
                let mut types = Vec::with_capacity(ids.len());
                types.extend_from_slice(&t.prefix_types);
                types.extend(std::iter::repeat_n(t.text_type, content.len()));
                types.extend_from_slice(&t.suffix_types);
                (ids, types)
            }
        }))
    }

    /// Encodes texts (and optional second texts of pairs), in parallel, truncated but unpadded. A row whose
    /// second text is `None` is encoded as a single text (a batch may mix texts and pairs).
    pub fn encode(
        &self,
        texts: &[String],
        pairs: Option<&[Option<String>]>,
        add_special_tokens: bool,
    ) -> CoreResult<EncodedBatch> {
        if let Some(p) = pairs {
            check_same_size(
                "texts and pairs must have the same length",
                texts.len(),
                p.len(),
            )?;
        }
        if let (Some(max), Some(p)) = (self.settings.max_length, pairs) {
            let added = self
                .inner
                .get_post_processor()
                .map_or(0, |pp| pp.added_tokens(true));
            if max < added && p.iter().any(Option::is_some) {
                return Err(invalid(format!(
                    "max_length must be at least the {added} special tokens the tokenizer adds to a text pair, \
                     got {max}"
                )));
            }
        }
        let fast = if texts.is_empty() {
            None
        } else {
            self.fast_path()
        };
        let encode_one = |buf: &mut Vec<u8>, i: usize| -> CoreResult<(Vec<u32>, Vec<u32>)> {
            let second = pairs.and_then(|p| p[i].as_deref());
            if let (Some(fast), None) = (fast, second) {
                if let Some(row) =
                    self.encode_single_fast(fast, &texts[i], add_special_tokens, buf)?
                {
                    return Ok(row);
                }
            }
            if let (Some(second), Truncation::LongestFirst, Some(_)) =
                (second, self.settings.truncation, self.settings.max_length)
            {
                let enc = self
                    .encode_pair_longest_first(&texts[i], second, add_special_tokens)
                    .map_err(|e| {
                        CoreError::Tokenizer(format!("could not tokenize text {i}: {e}"))
                    })?;
                return Ok((enc.get_ids().to_vec(), enc.get_type_ids().to_vec()));
            }
            let input: EncodeInput = match second {
                Some(second) => (texts[i].as_str(), second).into(),
                None => texts[i].as_str().into(),
            };
            // Without offsets (only ids and type ids are kept): no byte-to-char map per text.
            let enc: Encoding = self
                .inner
                .encode_fast(input, add_special_tokens)
                .map_err(|e| CoreError::Tokenizer(format!("could not tokenize text {i}: {e}")))?;
            Ok((enc.get_ids().to_vec(), enc.get_type_ids().to_vec()))
        };
        let rows: Vec<CoreResult<(Vec<u32>, Vec<u32>)>> =
            if parallel::parallel_enabled() && texts.len() > 1 {
                parallel::install(|| {
                    (0..texts.len())
                        .into_par_iter()
                        .map_init(Vec::new, encode_one)
                        .collect()
                })
            } else {
                let mut buf = Vec::new();
                (0..texts.len()).map(|i| encode_one(&mut buf, i)).collect()
            };
        let mut out = EncodedBatch {
            ids: Vec::with_capacity(texts.len()),
            type_ids: Vec::with_capacity(texts.len()),
        };
        for row in rows {
            let (ids, type_ids) = row?;
            out.ids.push(ids);
            out.type_ids.push(type_ids);
        }
        Ok(out)
    }

    /// A pair cut `longest_first`: both texts tokenized in full, then truncated and given their special tokens.
    /// `tokenizers` 0.23.2 stops tokenizing each text of a pair at `max_length` tokens before it compares their
    /// lengths, so when both are longer the odd token of the budget went to the second text even where the first
    /// was the longer one; the Python `tokenizers` (and so the reference) gives it to the longer text.
    fn encode_pair_longest_first(
        &self,
        first: &str,
        second: &str,
        add_special_tokens: bool,
    ) -> tokenizers::Result<Encoding> {
        let plain = self.untruncated.get_or_init(|| {
            let mut plain = self.inner.clone();
            // Turning truncation off cannot fail.
            let _ = plain.with_truncation(None);
            plain
        });
        let a = plain.encode_fast(first, false)?;
        let mut b = plain.encode_fast(second, false)?;
        b.set_type_ids(vec![1; b.len()]);
        self.inner.post_process(a, Some(b), add_special_tokens)
    }

    /// Pads the given rows of `encoded` into one batch with this tokenizer's pad ids and padding side.
    pub fn pad(
        &self,
        encoded: &EncodedBatch,
        rows: &[usize],
        padding: Padding,
        multiple_of: Option<usize>,
    ) -> CoreResult<PaddedBatch> {
        pad_rows(
            encoded,
            rows,
            padding,
            multiple_of,
            self.settings.pad_id,
            self.settings.pad_type_id,
            self.settings.padding_side,
        )
    }
}

impl EncodedBatch {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Token count of each row.
    pub fn lengths(&self) -> Vec<usize> {
        self.ids.iter().map(Vec::len).collect()
    }
}

/// Cuts `ids` to `max_length` from `side`, as single-sequence truncation does.
pub(crate) fn truncate_ids(ids: &mut Vec<u32>, max_length: Option<usize>, side: Side) {
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

/// Largest padded batch, in tokens (rows x length, and the length alone): 2^32 tokens are already 32 GiB per int64
/// matrix, and the batch needs three.
pub const MAX_PADDED_LENGTH: usize = 1 << 32;

/// Pads `rows` of `encoded` (in the given order) into `(len(rows), seq)` matrices.
///
/// `seq` is the longest selected row ([`Padding::Longest`]) or the fixed length, rounded up to a multiple of
/// `multiple_of` when given.
pub fn pad_rows(
    encoded: &EncodedBatch,
    rows: &[usize],
    padding: Padding,
    multiple_of: Option<usize>,
    pad_id: u32,
    pad_type_id: u32,
    side: Side,
) -> CoreResult<PaddedBatch> {
    let n = encoded.len();
    if let Some(&bad) = rows.iter().find(|&&r| r >= n) {
        return Err(invalid(format!(
            "row index {bad} is out of range for a batch of {n} encoded texts"
        )));
    }
    if multiple_of == Some(0) {
        return Err(invalid("pad_to_multiple_of must be >= 1, got 0"));
    }
    let longest = rows
        .iter()
        .map(|&r| encoded.ids[r].len())
        .max()
        .unwrap_or(0);
    let mut seq = match padding {
        Padding::Longest => longest,
        Padding::Fixed(len) => {
            if longest > len {
                return Err(invalid(format!(
                    "pad_to must be >= the longest row ({longest} tokens), got {len}; raise it or truncate"
                )));
            }
            len
        }
    };
    if let Some(m) = multiple_of {
        seq = seq
            .div_ceil(m)
            .checked_mul(m)
            .ok_or_else(|| invalid(format!("padding {seq} up to a multiple of {m} overflows")))?;
    }
    // Three int64 matrices of rows x seq: refuse what no machine can hold, before allocating (or building a numpy
    // array whose byte size overflows, even with no rows).
    if seq > MAX_PADDED_LENGTH || rows.len().saturating_mul(seq) > MAX_PADDED_LENGTH {
        return Err(invalid(format!(
            "padding {} rows to {seq} tokens is too large (at most {MAX_PADDED_LENGTH} tokens per batch)",
            rows.len()
        )));
    }
    let mut input_ids = Array2::<i64>::from_elem((rows.len(), seq), i64::from(pad_id));
    let mut attention_mask = Array2::<i64>::zeros((rows.len(), seq));
    let mut token_type_ids = Array2::<i64>::from_elem((rows.len(), seq), i64::from(pad_type_id));
    for (b, &r) in rows.iter().enumerate() {
        let ids = &encoded.ids[r];
        let types = &encoded.type_ids[r];
        let offset = match side {
            Side::Right => 0,
            Side::Left => seq - ids.len(),
        };
        for (t, (&id, &ty)) in ids.iter().zip(types.iter()).enumerate() {
            input_ids[[b, offset + t]] = i64::from(id);
            attention_mask[[b, offset + t]] = 1;
            token_type_ids[[b, offset + t]] = i64::from(ty);
        }
    }
    Ok(PaddedBatch {
        input_ids,
        attention_mask,
        token_type_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny WordPiece tokenizer with BERT-style post-processing, built in memory.
    fn tiny_json() -> String {
        r###"{
          "version": "1.0", "truncation": null,
          "padding": {"strategy": {"Fixed": 16}, "direction": "Right", "pad_to_multiple_of": null,
                      "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
          "added_tokens": [
            {"id":0,"content":"[PAD]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},
            {"id":1,"content":"[UNK]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},
            {"id":2,"content":"[CLS]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},
            {"id":3,"content":"[SEP]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],
          "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                         "strip_accents": null, "lowercase": true},
          "pre_tokenizer": {"type": "BertPreTokenizer"},
          "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                               "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
          "decoder": null,
          "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                    "max_input_chars_per_word": 100,
                    "vocab": {"[PAD]":0,"[UNK]":1,"[CLS]":2,"[SEP]":3,"a":4,"man":5,"eats":6,"food":7,".":8,"##s":9}}
        }"###
        .to_string()
    }

    fn tok(max_length: Option<usize>) -> BatchTokenizer {
        BatchTokenizer::from_json(
            &tiny_json(),
            TokenizerSettings {
                max_length,
                ..Default::default()
            },
        )
        .unwrap()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ignores_fixed_padding_in_file_and_pads_to_longest() {
        let t = tok(None);
        let enc = t
            .encode(&strings(&["a man", "a man eats food ."]), None, true)
            .unwrap();
        assert_eq!(enc.ids[0], vec![2, 4, 5, 3]);
        assert_eq!(enc.ids[1], vec![2, 4, 5, 6, 7, 8, 3]);
        let batch = t.pad(&enc, &[0, 1], Padding::Longest, None).unwrap();
        assert_eq!(batch.input_ids.shape(), &[2, 7]);
        assert_eq!(batch.input_ids.row(0).to_vec(), vec![2, 4, 5, 3, 0, 0, 0]);
        assert_eq!(
            batch.attention_mask.row(0).to_vec(),
            vec![1, 1, 1, 1, 0, 0, 0]
        );
    }

    #[test]
    fn truncates_including_special_tokens() {
        let t = tok(Some(4));
        let enc = t
            .encode(&strings(&["a man eats food ."]), None, true)
            .unwrap();
        assert_eq!(enc.ids[0], vec![2, 4, 5, 3]);
    }

    #[test]
    fn empty_text_gets_special_tokens_only() {
        let t = tok(None);
        let enc = t.encode(&strings(&["", "   "]), None, true).unwrap();
        assert_eq!(enc.ids, vec![vec![2, 3], vec![2, 3]]);
    }

    #[test]
    fn pairs_get_segment_ids_and_longest_first_truncation() {
        let t = tok(Some(7));
        let enc = t
            .encode(
                &strings(&["a man eats food"]),
                Some(&[Some("a man".to_string())]),
                true,
            )
            .unwrap();
        // 4 + 2 words + 3 specials = 9 > 7: two tokens come off the longer first text.
        assert_eq!(enc.ids[0], vec![2, 4, 5, 3, 4, 5, 3]);
        assert_eq!(enc.type_ids[0], vec![0, 0, 0, 0, 1, 1, 1]);
    }

    #[test]
    fn longest_first_gives_the_odd_token_to_the_longer_text_when_both_are_over_max_length() {
        // max_length 8 leaves 5 tokens for the texts: 3 for the longer first text (9 words), 2 for the second (8).
        let t = tok(Some(8));
        let first = "a man eats food a man eats food a";
        let second = "a man eats food a man eats food".to_string();
        let enc = t
            .encode(&strings(&[first]), Some(&[Some(second)]), true)
            .unwrap();
        assert_eq!(enc.ids[0], vec![2, 4, 5, 6, 3, 4, 5, 3]);
        assert_eq!(enc.type_ids[0], vec![0, 0, 0, 0, 0, 1, 1, 1]);
    }

    #[test]
    fn a_batch_mixes_texts_and_pairs_row_by_row() {
        let t = tok(None);
        let mixed = t
            .encode(
                &strings(&["a man", "food"]),
                Some(&[None, Some("a man".to_string())]),
                true,
            )
            .unwrap();
        let text = t.encode(&strings(&["a man"]), None, true).unwrap();
        let pair = t
            .encode(
                &strings(&["food"]),
                Some(&[Some("a man".to_string())]),
                true,
            )
            .unwrap();
        assert_eq!(mixed.ids, vec![text.ids[0].clone(), pair.ids[0].clone()]);
        assert_eq!(
            mixed.type_ids,
            vec![text.type_ids[0].clone(), pair.type_ids[0].clone()]
        );
    }

    #[test]
    fn pair_length_mismatch_is_an_error() {
        let t = tok(None);
        let err = t
            .encode(&strings(&["a", "b"]), Some(&[Some("a".to_string())]), true)
            .unwrap_err();
        assert!(err.to_string().contains("same length"));
    }

    #[test]
    fn left_padding_and_multiple_of() {
        let enc = EncodedBatch {
            ids: vec![vec![2, 4, 3], vec![2, 3]],
            type_ids: vec![vec![0; 3], vec![0; 2]],
        };
        let b = pad_rows(&enc, &[1, 0], Padding::Longest, Some(4), 0, 0, Side::Left).unwrap();
        assert_eq!(b.input_ids.row(0).to_vec(), vec![0, 0, 2, 3]);
        assert_eq!(b.attention_mask.row(1).to_vec(), vec![0, 1, 1, 1]);
    }

    #[test]
    fn fixed_padding_shorter_than_row_is_an_error() {
        let enc = EncodedBatch {
            ids: vec![vec![2, 4, 3]],
            type_ids: vec![vec![0; 3]],
        };
        assert!(pad_rows(&enc, &[0], Padding::Fixed(2), None, 0, 0, Side::Right).is_err());
        assert!(pad_rows(&enc, &[5], Padding::Longest, None, 0, 0, Side::Right).is_err());
    }

    #[test]
    fn bad_json_is_an_error_not_a_panic() {
        assert!(BatchTokenizer::from_json("{not json", TokenizerSettings::default()).is_err());
        assert!(BatchTokenizer::from_file(
            Path::new("/nonexistent/tokenizer.json"),
            TokenizerSettings::default()
        )
        .is_err());
    }
}
