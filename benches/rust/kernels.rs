//! Criterion benchmarks of the public kernels of `sentrs_core`: tokenization, pooling, normalisation,
//! similarity, batch planning, exact top-k search (bf16 candidates + fp32 rescoring, and plain fp32), Hamming
//! top-k over packed bits, paraphrase-pair merging, MaxSim scoring and top-k (fp32 and AMX kernels) and the AMX
//! SPLADE head.
//!
//! Run with the `python` feature off (it links the PyO3 extension module):
//!
//! ```text
//! SENTRS_TOKENIZER_JSON=/path/to/tokenizer.json cargo bench --no-default-features --bench kernels
//! ```
//!
//! The tokenizer benchmark needs a real `tokenizer.json` (all-MiniLM-L6-v2's, for comparable numbers); without
//! `SENTRS_TOKENIZER_JSON` it is skipped with a note. Every input is generated deterministically, so runs on
//! the same machine are comparable. `SENTRS_NUM_THREADS` caps the kernels' thread pool as it does in Python.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use ndarray::{Array2, Array3};
use sentrs_core::batching::plan_batches;
use sentrs_core::cancel::Cancel;
use sentrs_core::pooling::{normalize_rows, pool, PoolingMode};
use sentrs_core::similarity::{similarity_matrix, Similarity};
use sentrs_core::static_embed::embed_mean;
use sentrs_core::tokenize::{BatchTokenizer, Padding, TokenizerSettings};
use sentrs_core::topk::{topk_search_at, TopKScore};
use std::hint::black_box;
use std::path::PathBuf;

/// Embedding width of all-MiniLM-L6-v2.
const HIDDEN: usize = 384;

/// A small deterministic generator (Knuth's MMIX linear congruential constants); no `rand` needed.
struct Lcg(u64);

impl Lcg {
    fn new(seed: u64) -> Self {
        Lcg(seed)
    }

    fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }

    /// Uniform integer in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u32() as usize) % (hi - lo + 1)
    }

    /// Uniform float in `[-1, 1)`.
    fn unit(&mut self) -> f32 {
        (self.next_u32() as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
    }
}

/// Vocabulary of the generated sentences: common English words plus a few long, rare ones (word pieces).
const WORDS: &str = "\
    the a of to and in is that for it with as was on be at by this from or which an are not but have one \
    all their there time people year way day man thing woman life child world school state family \
    student group country problem hand part place case week company system program question work \
    government number night point home water room mother area money story fact month lot right study \
    book eye job word business issue side kind head house service friend father power hour game line end \
    member law car city community name president team minute idea kid body information back parent face \
    others level office door health person art war history party result change morning reason research \
    girl guy moment air teacher force education quickly slowly carefully beautiful important different \
    small large national political social economic local late hard major better strong possible whole \
    free military true federal international full special easy clear recent certain personal open red \
    difficult available likely short single medical current wrong private past foreign fine common poor \
    natural significant similar hot dead central happy serious ready simple left physical general \
    environmental financial blue democratic dark various entire close legal religious cold final main \
    green nice huge popular traditional cultural run move live believe bring happen write provide sit \
    stand lose pay meet include continue learn understand embedding transformer tokenization similarity \
    retrieval semantic unbelievably internationalization photosynthesis cryptocurrency";

/// `n` deterministic English-ish sentences of 5 to 40 words, capitalised, with some punctuation.
fn sentences(n: usize, seed: u64) -> Vec<String> {
    let words: Vec<&str> = WORDS.split_whitespace().collect();
    let mut rng = Lcg::new(seed);
    (0..n)
        .map(|_| {
            let count = rng.range(5, 40);
            let mut s = String::with_capacity(count * 8);
            for w in 0..count {
                let word = words[rng.range(0, words.len() - 1)];
                if w == 0 {
                    let mut chars = word.chars();
                    if let Some(first) = chars.next() {
                        s.extend(first.to_uppercase());
                        s.push_str(chars.as_str());
                    }
                } else {
                    s.push_str(if rng.range(0, 11) == 0 { ", " } else { " " });
                    s.push_str(word);
                }
            }
            s.push(if rng.range(0, 4) == 0 { '?' } else { '.' });
            s
        })
        .collect()
}

/// A `(rows, cols)` matrix of values in `[-1, 1)`.
fn random_matrix(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
    let mut rng = Lcg::new(seed);
    Array2::from_shape_simple_fn((rows, cols), || rng.unit())
}

fn bench_tokenize(c: &mut Criterion) {
    let Some(path) = std::env::var_os("SENTRS_TOKENIZER_JSON").map(PathBuf::from) else {
        eprintln!(
            "note: SENTRS_TOKENIZER_JSON is not set, skipping the tokenize benchmarks (point it at \
             all-MiniLM-L6-v2's tokenizer.json)"
        );
        return;
    };
    let settings = TokenizerSettings {
        max_length: Some(256),
        ..Default::default()
    };
    let tokenizer = match BatchTokenizer::from_file(&path, settings) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "note: could not load {}: {e}; skipping the tokenize benchmarks",
                path.display()
            );
            return;
        }
    };
    let texts = sentences(2000, 42);
    let encoded = tokenizer
        .encode(&texts, None, true)
        .expect("encoding the benchmark texts failed");
    let rows: Vec<usize> = (0..encoded.len()).collect();

    let mut group = c.benchmark_group("tokenize");
    // One encode of the corpus takes tens of milliseconds: fewer samples keep short runs within their budget.
    group.sample_size(20);
    group.throughput(Throughput::Elements(texts.len() as u64));
    group.bench_with_input(
        BenchmarkId::new("encode", texts.len()),
        &texts,
        |b, texts| b.iter(|| tokenizer.encode(black_box(texts), None, true).unwrap()),
    );
    // StaticEmbedding's path: tokenize without special tokens and average 256-d rows.
    let weights = random_matrix(tokenizer.vocab_size(), 256, 7);
    group.bench_with_input(
        BenchmarkId::new("static_embed_mean", texts.len()),
        &texts,
        |b, texts| b.iter(|| embed_mean(&tokenizer, black_box(texts), weights.view()).unwrap()),
    );
    // The same texts through the full tokenizers pipeline (no WordPiece fast path), for comparison with `encode`.
    let pipeline = BatchTokenizer::from_file(&path, tokenizer.settings().clone()).unwrap();
    pipeline.disable_fast_path();
    group.bench_with_input(
        BenchmarkId::new("encode_pipeline_only", texts.len()),
        &texts,
        |b, texts| b.iter(|| pipeline.encode(black_box(texts), None, true).unwrap()),
    );
    group.bench_with_input(
        BenchmarkId::new("pad_longest", rows.len()),
        &rows,
        |b, rows| {
            b.iter(|| {
                tokenizer
                    .pad(black_box(&encoded), black_box(rows), Padding::Longest, None)
                    .unwrap()
            })
        },
    );
    group.finish();
}

fn bench_pooling(c: &mut Criterion) {
    let (batch, seq) = (32, 128);
    let mut rng = Lcg::new(7);
    let tokens = Array3::from_shape_simple_fn((batch, seq, HIDDEN), || rng.unit());
    // Right-padded masks of varying length, as length-sorted batches of real text would not quite be.
    let mut mask = Array2::<i64>::zeros((batch, seq));
    for (i, mut row) in mask.rows_mut().into_iter().enumerate() {
        let len = if i == 0 { seq } else { rng.range(4, seq) };
        row.slice_mut(ndarray::s![..len]).fill(1);
    }

    let mut group = c.benchmark_group("pool");
    group.throughput(Throughput::Elements(batch as u64));
    let cases: [(&str, &[PoolingMode]); 4] = [
        ("mean", &[PoolingMode::Mean]),
        ("max", &[PoolingMode::Max]),
        ("cls", &[PoolingMode::Cls]),
        ("mean+max", &[PoolingMode::Mean, PoolingMode::Max]),
    ];
    for (name, modes) in cases {
        group.bench_function(
            BenchmarkId::new(name, format!("{batch}x{seq}x{HIDDEN}")),
            |b| {
                b.iter(|| pool(black_box(tokens.view()), black_box(mask.view()), modes, 0).unwrap())
            },
        );
    }
    group.finish();

    let embeddings = random_matrix(2000, HIDDEN, 11);
    let mut group = c.benchmark_group("normalize_rows");
    group.throughput(Throughput::Elements(embeddings.nrows() as u64));
    group.bench_function(
        BenchmarkId::from_parameter(format!("{}x{HIDDEN}", embeddings.nrows())),
        |b| {
            b.iter_batched_ref(
                || embeddings.clone(),
                |x| normalize_rows(black_box(x)),
                BatchSize::LargeInput,
            )
        },
    );
    group.finish();
}

fn bench_similarity(c: &mut Criterion) {
    let (n, m) = (100, 10_000);
    let a = random_matrix(n, HIDDEN, 1);
    let b = random_matrix(m, HIDDEN, 2);
    let mut group = c.benchmark_group("similarity_matrix");
    group.sample_size(30);
    group.throughput(Throughput::Elements((n * m) as u64));
    for (name, sim) in [("cosine", Similarity::Cosine), ("dot", Similarity::Dot)] {
        group.bench_function(
            BenchmarkId::new(name, format!("{n}x{m}x{HIDDEN}")),
            |bench| {
                bench.iter(|| {
                    similarity_matrix(black_box(a.view()), black_box(b.view()), sim).unwrap()
                })
            },
        );
    }
    group.finish();
}

fn bench_batching(c: &mut Criterion) {
    let n = 100_000;
    let mut rng = Lcg::new(3);
    let lengths: Vec<usize> = (0..n).map(|_| rng.range(3, 256)).collect();
    let mut group = c.benchmark_group("plan_batches");
    group.throughput(Throughput::Elements(n as u64));
    for (name, max_tokens) in [("batch32", None), ("batch32_max4096tok", Some(4096))] {
        group.bench_with_input(BenchmarkId::new(name, n), &lengths, |b, lengths| {
            b.iter(|| plan_batches(black_box(lengths), 32, max_tokens).unwrap())
        });
    }
    group.finish();
}

fn bench_search(c: &mut Criterion) {
    let (nq, nc, k) = (200, 20_000, 10);
    let queries = random_matrix(nq, HIDDEN, 4);
    let corpus = random_matrix(nc, HIDDEN, 5);
    let mut group = c.benchmark_group("topk_search");
    group.sample_size(10);
    group.throughput(Throughput::Elements((nq * nc) as u64));
    // At each SIMD level this CPU runs: the candidate pass of the level (int16 from AVX2, int16-VNNI where the CPU
    // has AVX-VNNI, bf16 at AVX-512 on CPUs with AVX512-BF16 and no AVX-VNNI) and, with `force_fp32`
    // (`SENTRS_EXACT_FP32=1` in Python), the level's fp32 fused kernel. The level is in the benchmark id.
    let cancel = Cancel::new();
    for level in sentrs_core::simd::supported_levels() {
        for (name, fp32) in [("candidates", false), ("fp32", true)] {
            group.bench_function(
                BenchmarkId::new(
                    format!("{}/{name}", level.name()),
                    format!("{nq}x{nc}x{HIDDEN}_k{k}"),
                ),
                |bench| {
                    bench.iter(|| {
                        topk_search_at(
                            level,
                            black_box(queries.view()),
                            black_box(corpus.view()),
                            k,
                            TopKScore::Cosine,
                            8192,
                            false,
                            fp32,
                            &cancel,
                        )
                        .unwrap()
                    })
                },
            );
        }
    }
    group.finish();

    let mut rng = Lcg::new(6);
    let codes_q = Array2::from_shape_fn((nq, HIDDEN / 8), |_| rng.range(0, 255) as u8);
    let codes_c = Array2::from_shape_fn((100_000, HIDDEN / 8), |_| rng.range(0, 255) as u8);
    let mut group = c.benchmark_group("hamming_topk");
    group.sample_size(10);
    group.throughput(Throughput::Elements((nq * codes_c.nrows()) as u64));
    group.bench_function(
        BenchmarkId::new("ubinary", format!("{nq}x100000x{HIDDEN}bits_k40")),
        |bench| {
            bench.iter(|| {
                sentrs_core::quantize::hamming_topk(
                    black_box(codes_q.view()),
                    black_box(codes_c.view()),
                    40,
                    &cancel,
                )
                .unwrap()
            })
        },
    );
    group.finish();

    let n = 20_000;
    let ids = Array2::from_shape_fn((n, 100), |(i, j)| ((i * 7919 + j * 104_729) % n) as i64);
    let scores = Array2::from_shape_fn((n, 100), |(i, j)| 1.0 - ((i + j) % 997) as f32 / 997.0);
    let mut group = c.benchmark_group("mine_pairs");
    group.sample_size(10);
    group.throughput(Throughput::Elements((n * 100) as u64));
    group.bench_function(
        BenchmarkId::new("dedup_sort", format!("{n}x100")),
        |bench| {
            bench.iter(|| {
                sentrs_core::cluster::mine_pairs(
                    black_box(ids.view()),
                    black_box(scores.view()),
                    500_000,
                )
                .unwrap()
            })
        },
    );
    group.finish();
}

/// MaxSim of 100 queries (32 tokens) against 300 documents (120-240 tokens), dim 128, per kernel this CPU runs; the
/// exact top-10 of the same; the SPLADE max head (AMX only) on 32 texts of 24 tokens, hidden 128, vocabulary 30,522.
fn bench_late_interaction(c: &mut Criterion) {
    use sentrs_core::maxsim::{amx, maxsim_topk, maxsim_with, Kernel, Ragged};

    let dim = 128;
    let mut rng = Lcg::new(9);
    let q_off: Vec<usize> = (0..=100).map(|i| i * 32).collect();
    let mut d_off = vec![0usize];
    for _ in 0..300 {
        d_off.push(d_off[d_off.len() - 1] + rng.range(120, 240));
    }
    let mut q = random_matrix(q_off[100], dim, 10);
    let mut d = random_matrix(d_off[300], dim, 11);
    normalize_rows(&mut q);
    normalize_rows(&mut d);
    let qr = Ragged::new(q.view(), &q_off, "q").unwrap();
    let dr = Ragged::new(d.view(), &d_off, "d").unwrap();
    let cancel = Cancel::new();
    let kernels: &[(&str, Kernel)] = if amx::supported() {
        &[("fp32", Kernel::Fp32), ("amx", Kernel::Amx)]
    } else {
        &[("fp32", Kernel::Fp32)]
    };
    let mut group = c.benchmark_group("maxsim");
    group.sample_size(10);
    group.throughput(Throughput::Elements(100 * 300));
    for &(name, kernel) in kernels {
        group.bench_function(BenchmarkId::new(name, "100x300_dim128"), |bench| {
            bench.iter(|| {
                maxsim_with(black_box(qr), black_box(dr), None, -1e9, &cancel, kernel).unwrap()
            })
        });
        group.bench_function(
            BenchmarkId::new(format!("{name}_top10"), "100x300_dim128"),
            |bench| {
                bench.iter(|| {
                    maxsim_topk(
                        black_box(qr),
                        black_box(dr),
                        None,
                        10,
                        -1e9,
                        &cancel,
                        kernel,
                    )
                    .unwrap()
                })
            },
        );
    }
    group.finish();

    if !amx::supported() {
        eprintln!("splade_max_head: skipped (no AMX on this CPU)");
        return;
    }
    let hidden = Array3::from_shape_fn((32, 24, 128), |_| rng.unit());
    let mask = Array2::<i64>::ones((32, 24));
    let weight = random_matrix(30_522, 128, 12);
    let bias = ndarray::Array1::from_elem(30_522, -2.0f32);
    let mut group = c.benchmark_group("splade_max_head");
    group.sample_size(10);
    group.throughput(Throughput::Elements(32 * 24));
    group.bench_function(BenchmarkId::new("amx", "32x24x128_vocab30522"), |bench| {
        bench.iter(|| {
            sentrs_core::sparse_head::splade_max_head(
                black_box(hidden.view()),
                mask.view(),
                weight.view(),
                Some(bias.view()),
                sentrs_core::sparse::SpladeActivation::Relu,
                None,
                &cancel,
            )
            .unwrap()
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_tokenize,
    bench_pooling,
    bench_similarity,
    bench_batching,
    bench_search,
    bench_late_interaction
);
criterion_main!(benches);
