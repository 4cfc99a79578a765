//! An exact fast path for BERT-style WordPiece tokenizers (`BertNormalizer` + `BertPreTokenizer` + `WordPiece`).
//!
//! For a text of printable ASCII (plus tab, newline and carriage return) with no character that could start an
//! added token, the `tokenizers` pipeline reduces to: lower-case ASCII (when the normalizer lower-cases), split on
//! whitespace and ASCII punctuation (each punctuation mark its own word), and tokenize each word with WordPiece, whose
//! answer for a word that is itself a vocabulary entry is that entry. This module does exactly that with one scratch
//! buffer and one hash lookup per word, and defers to the WordPiece model for other words; every other text takes the
//! full pipeline. Special tokens come from the post-processor's template, found by probing the real pipeline with
//! two texts at construction: the fast path only runs where the probes prove the template is `prefix + text +
//! suffix`. Setting `SENTRS_FAST_WORDPIECE=0` turns the fast path off (for comparisons).

use crate::error::{CoreError, CoreResult};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use tokenizers::models::ModelWrapper;
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{Model, Tokenizer};

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

/// Whether the fast path is allowed in this process (`SENTRS_FAST_WORDPIECE=0` turns it off).
pub fn enabled() -> bool {
    std::env::var("SENTRS_FAST_WORDPIECE").map_or(true, |v| v != "0")
}

/// The special tokens the post-processor puts around a single text: `prefix + text + suffix`, with type ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SingleTemplate {
    /// Ids before the text.
    pub prefix: Vec<u32>,
    /// Type ids of `prefix`.
    pub prefix_types: Vec<u32>,
    /// Ids after the text.
    pub suffix: Vec<u32>,
    /// Type ids of `suffix`.
    pub suffix_types: Vec<u32>,
    /// The type id of the text's own tokens.
    pub text_type: u32,
}

/// The ASCII fast path of a `BertNormalizer` + `BertPreTokenizer` + `WordPiece` tokenizer.
pub struct FastWordPiece {
    vocab: FastMap,
    lowercase: bool,
    max_input_chars_per_word: usize,
    /// ASCII bytes that send a text to the full pipeline: controls other than tab/newline/CR, and the first
    /// character (both cases) of every added token.
    slow_bytes: [bool; 128],
    /// The post-processor's template for single texts, when the probes confirmed one.
    template: Option<SingleTemplate>,
}

impl FastWordPiece {
    /// The fast path for `inner`, or `None` when its pipeline is not the BERT one this path reproduces (or the fast
    /// path is turned off).
    pub fn new(inner: &Tokenizer) -> Option<Self> {
        if !enabled() {
            return None;
        }
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
            // A non-ASCII first character never occurs in an ASCII text.
            if let Some(c) = token.content.chars().next().filter(char::is_ascii) {
                slow_bytes[c.to_ascii_lowercase() as usize] = true;
                slow_bytes[c.to_ascii_uppercase() as usize] = true;
            }
        }
        let vocab: FastMap = wp
            .get_vocab()
            .into_iter()
            .map(|(k, v)| (k.into_boxed_str(), v))
            .collect();
        let mut fast = FastWordPiece {
            vocab,
            lowercase,
            max_input_chars_per_word: wp.max_input_chars_per_word,
            slow_bytes,
            template: None,
        };
        fast.template = fast.probe_template(inner);
        Some(fast)
    }

    /// The template for single texts, if two probe texts show the pipeline puts fixed tokens around the text.
    fn probe_template(&self, inner: &Tokenizer) -> Option<SingleTemplate> {
        let added = inner
            .get_post_processor()
            .map_or(0, |p| tokenizers::PostProcessor::added_tokens(p, false));
        // Two vocabulary words of lower-case letters make probe texts the fast path handles.
        let mut words: Vec<&str> = self
            .vocab
            .keys()
            .map(|k| k.as_ref())
            .filter(|w| w.len() >= 2 && w.bytes().all(|b| b.is_ascii_lowercase()))
            .collect();
        words.sort_unstable();
        let (a, b) = (*words.first()?, *words.get(1)?);
        let mut template: Option<SingleTemplate> = None;
        for probe in [a.to_string(), format!("{a} {b}")] {
            let mut content = Vec::new();
            let mut buf = Vec::new();
            if !self
                .encode_ids(inner, &probe, &mut buf, &mut content)
                .ok()?
            {
                return None;
            }
            let full = inner.encode_fast(probe.as_str(), true).ok()?;
            let (ids, types) = (full.get_ids(), full.get_type_ids());
            if ids.len() != content.len() + added {
                return None;
            }
            let start = (0..=ids.len() - content.len())
                .find(|&s| ids[s..s + content.len()] == content[..])?;
            let end = start + content.len();
            let text_type = *types.get(start)?;
            if types[start..end].iter().any(|&t| t != text_type) {
                return None;
            }
            let found = SingleTemplate {
                prefix: ids[..start].to_vec(),
                prefix_types: types[..start].to_vec(),
                suffix: ids[end..].to_vec(),
                suffix_types: types[end..].to_vec(),
                text_type,
            };
            match &template {
                Some(t) if *t != found => return None,
                _ => template = Some(found),
            }
        }
        template
    }

    /// The template for single texts, when the probes confirmed one.
    pub fn template(&self) -> Option<&SingleTemplate> {
        self.template.as_ref()
    }

    /// Appends the ids of `text` (no special tokens, no truncation) to `out` and returns true, or returns false
    /// (leaving `out` as it was) when the text needs the full pipeline. `buf` is scratch space reused across calls.
    pub fn encode_ids(
        &self,
        inner: &Tokenizer,
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
        for i in 0..=n {
            let boundary = i == n || {
                let b = buf[i];
                b == b' ' || b == b'\t' || b == b'\n' || b == b'\r' || b.is_ascii_punctuation()
            };
            if boundary {
                if start < i {
                    self.push_word(inner, &buf[start..i], out, start_len)?;
                }
                if i < n && buf[i].is_ascii_punctuation() {
                    self.push_word(inner, &buf[i..i + 1], out, start_len)?;
                }
                start = i + 1;
            }
        }
        Ok(true)
    }

    fn push_word(
        &self,
        inner: &Tokenizer,
        word: &[u8],
        out: &mut Vec<u32>,
        start_len: usize,
    ) -> CoreResult<()> {
        // The text is ASCII, so this never fails and bytes are characters.
        let word = std::str::from_utf8(word).map_err(|e| CoreError::Tokenizer(e.to_string()))?;
        if word.len() <= self.max_input_chars_per_word {
            if let Some(&id) = self.vocab.get(word) {
                out.push(id);
                return Ok(());
            }
        }
        match inner.get_model().tokenize(word) {
            Ok(tokens) => {
                out.extend(tokens.iter().map(|t| t.id));
                Ok(())
            }
            Err(e) => {
                out.truncate(start_len);
                Err(CoreError::Tokenizer(format!(
                    "could not tokenize the word {word:?}: {e}"
                )))
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tokenize::{BatchTokenizer, Side, TokenizerSettings, Truncation};

    pub(crate) fn bert_json(lowercase: bool) -> String {
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
            "post_processor": {{"type": "TemplateProcessing",
                "single": [{{"SpecialToken": {{"id": "[CLS]", "type_id": 0}}}}, {{"Sequence": {{"id": "A", "type_id": 0}}}},
                           {{"SpecialToken": {{"id": "[SEP]", "type_id": 0}}}}],
                "pair": [{{"SpecialToken": {{"id": "[CLS]", "type_id": 0}}}}, {{"Sequence": {{"id": "A", "type_id": 0}}}},
                         {{"SpecialToken": {{"id": "[SEP]", "type_id": 0}}}}, {{"Sequence": {{"id": "B", "type_id": 1}}}},
                         {{"SpecialToken": {{"id": "[SEP]", "type_id": 1}}}}],
                "special_tokens": {{"[CLS]": {{"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]}},
                                    "[SEP]": {{"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}}}}},
            "decoder": null,
            "model": {{"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                       "max_input_chars_per_word": 100, "vocab": {{{}}}}}}}"###,
            entries.join(", ")
        )
    }

    pub(crate) fn tok(lowercase: bool, max_length: Option<usize>) -> BatchTokenizer {
        tok_side(lowercase, max_length, Side::Right)
    }

    fn tok_side(lowercase: bool, max_length: Option<usize>, side: Side) -> BatchTokenizer {
        try_tok(lowercase, max_length, side).unwrap()
    }

    fn try_tok(
        lowercase: bool,
        max_length: Option<usize>,
        side: Side,
    ) -> CoreResult<BatchTokenizer> {
        let settings = TokenizerSettings {
            max_length,
            truncation: Truncation::LongestFirst,
            truncation_side: side,
            ..TokenizerSettings::default()
        };
        BatchTokenizer::from_json(&bert_json(lowercase), settings)
    }

    #[test]
    fn max_length_below_the_special_tokens_is_an_error() {
        let err = try_tok(true, Some(1), Side::Right).err().unwrap();
        assert!(err.to_string().contains("at least the 2 special tokens"));
        let t = tok(true, Some(2));
        assert_eq!(
            t.encode(&["the cat".to_string()], None, true).unwrap().ids[0],
            vec![2, 3]
        );
        let err = t
            .encode(&["the".to_string()], Some(&[Some("cat".to_string())]), true)
            .unwrap_err();
        assert!(err.to_string().contains("3 special tokens"));
    }

    /// The `tokenizers` pipeline alone, row by row.
    fn full(t: &BatchTokenizer, text: &str, special: bool) -> (Vec<u32>, Vec<u32>) {
        let e = t.inner().encode_fast(text, special).unwrap();
        (e.get_ids().to_vec(), e.get_type_ids().to_vec())
    }

    const TEXTS: &[&str] = &[
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
        "the cat sat the cat sat the cat sat",
    ];

    #[test]
    fn template_is_found_by_probing() {
        let t = tok(true, None);
        let f = t.fast_path().expect("a BERT pipeline");
        let tpl = f.template().expect("[CLS] $A [SEP]");
        assert_eq!(
            (tpl.prefix.clone(), tpl.suffix.clone(), tpl.text_type),
            (vec![2], vec![3], 0)
        );
    }

    #[test]
    fn fast_path_matches_the_pipeline() {
        let long = "a".repeat(150);
        for lowercase in [true, false] {
            for max_length in [None, Some(3), Some(5), Some(2)] {
                for side in [Side::Right, Side::Left] {
                    let t = tok_side(lowercase, max_length, side);
                    assert!(t.fast_path().is_some());
                    for special in [true, false] {
                        for text in TEXTS.iter().copied().chain([long.as_str()]) {
                            // Rows as `encode` returns them (fast path where it applies), against tokenizers alone.
                            let got = t.encode(&[text.to_string()], None, special).unwrap();
                            let (ids, types) = full(&t, text, special);
                            assert_eq!(
                                (got.ids[0].clone(), got.type_ids[0].clone()),
                                (ids, types),
                                "text {text:?}, lowercase {lowercase}, max_length {max_length:?}, {side:?}, \
                                 special tokens {special}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn pairs_and_mixed_batches_take_the_pipeline() {
        let t = tok(true, Some(6));
        let texts: Vec<String> = ["the cat", "sat . the cat sat", "a b"]
            .map(String::from)
            .to_vec();
        let pairs = vec![Some("the cat sat".to_string()), None, Some("".to_string())];
        let got = t.encode(&texts, Some(&pairs), true).unwrap();
        for (i, text) in texts.iter().enumerate() {
            let e = match &pairs[i] {
                Some(p) => t
                    .inner()
                    .encode_fast((text.as_str(), p.as_str()), true)
                    .unwrap(),
                None => t.inner().encode_fast(text.as_str(), true).unwrap(),
            };
            assert_eq!(got.ids[i], e.get_ids());
            assert_eq!(got.type_ids[i], e.get_type_ids());
        }
    }

    #[test]
    fn other_pipelines_have_no_fast_path() {
        let json = bert_json(true).replace(
            r#"{"type": "BertPreTokenizer"}"#,
            r#"{"type": "Whitespace"}"#,
        );
        let t = BatchTokenizer::from_json(&json, TokenizerSettings::default()).unwrap();
        assert!(t.fast_path().is_none());
    }

    #[test]
    fn no_post_processor_gives_an_empty_template() {
        let json = bert_json(true);
        let start = json.find(r#""post_processor""#).unwrap();
        let end = json.find(r#""decoder""#).unwrap();
        let json = format!(
            "{}\"post_processor\": null,\n            {}",
            &json[..start],
            &json[end..]
        );
        let t = BatchTokenizer::from_json(&json, TokenizerSettings::default()).unwrap();
        let tpl = t.fast_path().unwrap().template().unwrap();
        assert!(tpl.prefix.is_empty() && tpl.suffix.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn fast_path_matches_the_pipeline_on_any_text(
            text in "[a-zA-Z .,!#\\[\\]\\t\\n\\u{1}\\u{e9}]{0,40}",
            lowercase: bool,
            special: bool,
            max_length in proptest::option::of(2usize..12),
        ) {
            let t = tok(lowercase, max_length);
            let got = t.encode(std::slice::from_ref(&text), None, special).unwrap();
            let (ids, types) = full(&t, &text, special);
            proptest::prop_assert_eq!(&got.ids[0], &ids);
            proptest::prop_assert_eq!(&got.type_ids[0], &types);
        }
    }
}
