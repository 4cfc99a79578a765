"""Thread counts follow the CPUs the process may use (affinity mask and cgroup quota), not the host's count."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sentrs.util.environment import cgroup_cpu_limit


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "150000 100000\n"}, 2),
        ({"cpu.max": "400000 100000\n"}, 4),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu.max": "garbage\n"}, None),
        ({}, None),
    ],
    ids=["v2-1.5cpus", "v2-4cpus", "v2-unlimited", "v1-half", "v1-unlimited", "v2-garbage", "none"],
)
def test_cgroup_cpu_limit(tmp_path: Path, files: dict[str, str], expected: int | None) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_cpu_limit(str(tmp_path)) == expected


SCRIPT = """
import os
cpu = min(os.sched_getaffinity(0))
os.sched_setaffinity(0, {cpu})
os.environ.pop("SENTRS_NUM_THREADS", None)
from sentrs import ops
from sentrs.backend.onnx import available_cores
from sentrs.backend.openvino import read_ov_config
from sentrs.util.environment import available_cpus
print(ops.num_threads(), available_cores(), available_cpus(), read_ov_config(None)["INFERENCE_NUM_THREADS"])
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="affinity masks are Linux-only")
def test_pools_follow_the_affinity_mask() -> None:
    """Pinned to one CPU before sentrs starts: the Rust pool, ONNX Runtime's and OpenVINO's thread counts are 1."""
    env = {k: v for k, v in os.environ.items() if k != "SENTRS_NUM_THREADS"}
    command = [sys.executable, "-c", SCRIPT]
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True, timeout=120)
    assert out.stdout.split() == ["1", "1", "1", "1"], out.stderr
