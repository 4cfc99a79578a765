"""Long Rust searches honour Ctrl-C: the binding helper checks for signals while the kernel runs without the GIL."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

SCRIPT = """
import sys, time
import numpy as np
from sentrs import ops
rng = np.random.default_rng(0)
corpus = rng.standard_normal((300_000, 384)).astype(np.float32)
queries = rng.standard_normal((8_000, 384)).astype(np.float32)
print("ready", flush=True)
start = time.perf_counter()
try:
    ops.topk_search(queries, corpus, 10)
except KeyboardInterrupt:
    print(f"interrupted after {time.perf_counter() - start:.2f}", flush=True)
    ids, _ = ops.topk_search(queries[:2], corpus[:100], 3)  # the module still works afterwards
    print("usable", ids.shape, flush=True)
    sys.exit(0)
print("finished without interruption", flush=True)
sys.exit(1)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery to a child process is POSIX-only here")
def test_ctrl_c_stops_a_long_search() -> None:
    """8,000 x 300,000 x 384 takes several seconds even on a fast 2-core machine; SIGINT half a second in must stop
    it within a few seconds (the kernel checks a cancel flag between blocks) and leave the module usable."""
    child = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    sent = time.perf_counter()
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    waited = time.perf_counter() - sent
    assert child.returncode == 0, out + err[-2000:]
    assert "interrupted after" in out and "usable (2, 3)" in out
    assert waited < 10, f"the search took {waited:.1f}s to stop after Ctrl-C"
