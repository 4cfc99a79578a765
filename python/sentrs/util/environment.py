"""What the running environment offers: optional packages, the accelerator, the versions a model asks for.

Nothing here imports torch unless the answer needs it: without torch imported, no process group can be initialised.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import platform
import sys
from typing import Any

__all__ = [
    "available_cpus",
    "cgroup_cpu_limit",
    "check_package_availability",
    "check_version_requirements",
    "fit_torch_threads_to_cpu_quota",
    "get_device_name",
    "get_installed_version",
    "is_accelerate_available",
    "is_datasets_available",
    "is_dist_initialized",
    "is_training_available",
]

logger = logging.getLogger(__name__)

# Names a model's requirements may use for a package whose distribution is called otherwise.
_PACKAGE_ALIASES = {"pytorch": "torch"}


def cgroup_cpu_limit(root: str = "/sys/fs/cgroup") -> int | None:
    """CPUs the process's cgroup quota allows (rounded up), or None without a quota.

    Reads cgroup v2's ``cpu.max`` (``"<quota> <period>"`` or ``"max <period>"``) of the process's own cgroup (from
    ``/proc/self/cgroup``), falling back to the root's, then cgroup v1's ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``.
    """
    candidates = []
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as f:
            for line in f:
                parts = line.strip().split(":", 2)
                if len(parts) == 3 and parts[0] == "0" and parts[2].startswith("/"):
                    candidates.append(os.path.join(root, parts[2].lstrip("/"), "cpu.max"))
    except OSError:
        pass
    candidates.append(os.path.join(root, "cpu.max"))
    for path in candidates:
        try:
            with open(path, encoding="utf-8") as f:
                quota, _, period = f.read().strip().partition(" ")
        except OSError:
            continue
        if quota == "max":
            return None
        try:
            q, p = int(quota), int(period or "100000")
        except ValueError:
            return None
        return max(1, -(-q // p)) if q > 0 and p > 0 else None
    try:
        with open(os.path.join(root, "cpu", "cpu.cfs_quota_us"), encoding="utf-8") as f:
            q = int(f.read().strip())
        with open(os.path.join(root, "cpu", "cpu.cfs_period_us"), encoding="utf-8") as f:
            p = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return max(1, -(-q // p)) if q > 0 and p > 0 else None


def available_cpus() -> int:
    """Logical CPUs this process may run on: its affinity mask (``os.sched_getaffinity``), capped by the cgroup CPU
    quota. What thread pools should size themselves to (``os.cpu_count()`` counts the whole host)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    return max(1, cpus if limit is None else min(cpus, limit))


_TORCH_THREADS_FITTED = False


def fit_torch_threads_to_cpu_quota() -> None:
    """Once per process: lower torch's intra-op thread count to the cgroup CPU quota when it is above it.

    torch sizes its pool from the affinity mask, which a container's quota does not shrink (a 2-CPU container on a
    64-core host would run 64 threads on 2 CPUs' worth of time). Nothing changes when ``OMP_NUM_THREADS`` is set,
    without a quota, or when torch already runs fewer threads; a later ``torch.set_num_threads`` wins.
    """
    global _TORCH_THREADS_FITTED
    if _TORCH_THREADS_FITTED:
        return
    _TORCH_THREADS_FITTED = True
    if os.environ.get("OMP_NUM_THREADS") or "torch" not in sys.modules:
        return
    limit = cgroup_cpu_limit()
    if limit is None:
        return
    import torch

    if torch.get_num_threads() > limit:
        logger.info("Running torch on %d threads: this process's cgroup CPU quota", limit)
        torch.set_num_threads(limit)


def check_package_availability(package_name: str, owner: str) -> bool:
    """Whether the distribution ``package_name`` is installed and its project URLs name ``owner``.

    ``owner`` is e.g. ``"huggingface"``: a same-named distribution published by someone else does not count.
    """
    try:
        meta = importlib.metadata.metadata(package_name)
    except importlib.metadata.PackageNotFoundError:
        return False
    urls = [*(meta.get_all("Home-page") or []), *(meta.get_all("Project-URL") or [])]
    return (meta.get_all("Name") or [None])[0] == package_name and any(owner in url for url in urls)


def is_accelerate_available() -> bool:
    """Whether Hugging Face ``accelerate`` can be imported."""
    return importlib.util.find_spec("accelerate") is not None


def is_datasets_available() -> bool:
    """Whether Hugging Face ``datasets`` can be imported."""
    return importlib.util.find_spec("datasets") is not None


def is_training_available() -> bool:
    """Whether the packages training needs (``datasets`` and ``accelerate``) can be imported."""
    return is_accelerate_available() and is_datasets_available()


def is_dist_initialized() -> bool:
    """Whether a ``torch.distributed`` process group is initialised (False when torch was never imported)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    distributed = torch.distributed
    # Builds without distributed support lack is_initialized, so availability is checked first.
    return bool(distributed.is_available() and distributed.is_initialized())


def get_device_name() -> str:
    """The device this process should run on: ``"cuda:<local rank>"``, ``"mps"``, ``"npu"``, ``"xpu"``, ``"hpu"``
    or ``"cpu"``, in that order of preference.

    Under ``torchrun`` (``LOCAL_RANK`` set) or an initialised process group, each process takes its own GPU.
    """
    import torch

    if torch.cuda.is_available():
        if "LOCAL_RANK" in os.environ:
            return f"cuda:{int(os.environ['LOCAL_RANK'])}"
        if is_dist_initialized() and torch.cuda.device_count() > torch.distributed.get_rank():
            return f"cuda:{torch.distributed.get_rank()}"
        return "cuda:0"
    if torch.backends.mps.is_available():
        return "mps"
    if importlib.util.find_spec("torch_npu") is not None:
        import torch_npu  # noqa: F401 - registers torch.npu

        if getattr(torch, "npu").is_available():  # noqa: B009 - an attribute torch's stubs do not declare
            return "npu"
    if hasattr(torch, "xpu") and torch.xpu.is_available():
        return "xpu"
    if importlib.util.find_spec("habana_frameworks") is not None:
        import habana_frameworks.torch.hpu as hpu

        if hpu.is_available():
            return "hpu"
    return "cpu"


def get_installed_version(package_name: str) -> str | None:
    """The installed version of a package (``"python"``: the interpreter's), or None when it is not installed.

    An imported module's ``__version__`` wins over the distribution metadata, which lags behind editable installs.
    """
    if package_name == "python":
        return platform.python_version()
    version = getattr(sys.modules.get(package_name.replace("-", "_")), "__version__", None)
    if isinstance(version, str):
        return version
    try:
        return importlib.metadata.version(package_name)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_version_requirements(requirements: dict[str, Any] | None, source: str | None = None) -> None:
    """Checks the package versions a model declares against the installed ones.

    Args:
        requirements: package name -> PEP 440 specifier (``{"transformers": ">=5.1"}``), or -> ``{"specifier": ...,
            "reason": ...}`` where the reason says what breaks otherwise. ``"python"`` is the interpreter;
            ``"pytorch"`` means ``torch``. A requirement that cannot be read is logged and skipped, so a typo in a
            model's config does not make it unloadable.
        source: the model name or path, for the message.

    Raises:
        ImportError: some requirement is not met; the message lists each one and a ``pip install`` line.
    """
    if not requirements:
        return
    if not isinstance(requirements, dict):
        logger.warning(f"ignoring the requirements of {source!r}: expected a dict of version specifiers")
        return
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    unmet: list[tuple[str, str, str]] = []
    for name, requirement in requirements.items():
        package = _PACKAGE_ALIASES.get(name, name)
        specifier, reason = (
            (requirement.get("specifier", ""), requirement.get("reason", ""))
            if isinstance(requirement, dict)
            else (requirement, "")
        )
        try:
            wanted = SpecifierSet(specifier, prereleases=True)
            installed = get_installed_version(package)
            if installed is not None and Version(installed) in wanted:
                continue
        except Exception as exc:  # an unreadable specifier or version: warn, never block loading
            logger.warning(f"cannot check the requirement '{package}{specifier}' of {source or 'this model'}: {exc}")
            continue
        found = f"{installed} is installed" if installed else "not installed"
        unmet.append((package, specifier, f"- {package}{specifier} ({found}){': ' + reason if reason else ''}"))
    if unmet:
        model = f"the model {source!r}" if source else "this model"
        lines = [f"{model} needs package versions that are not installed:", *(line for _, _, line in unmet)]
        pins = " ".join(f'"{package}{specifier}"' for package, specifier, _ in unmet if package != "python")
        if pins:
            lines.append(f"install them with: pip install -U {pins}")
        raise ImportError("\n".join(lines))
