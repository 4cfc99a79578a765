"""The import paths user code takes from sentence-transformers exist in sentrs, or fail clearly.

The reference's paths are read from the installed reference itself (its module files and the old paths its import
hook serves, REFERENCE.md section 0.2), so a new reference path shows up here without editing this file.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import sys
import warnings
from pathlib import Path
from types import ModuleType

import pytest

REF = "sentence_transformers"

# Reference paths (with ``sentrs`` for ``sentence_transformers``) that sentrs does not provide yet, by the issue
# topic that will bring them. fnmatch patterns: ``*`` also crosses dots. Each entry must really fail to import, so the
# list shrinks as features land.
NOT_YET: dict[str, str] = {
    # training: trainers, their arguments, collators, samplers, losses, datasets and readers
    "sentrs.base.losses": "training",
    "sentrs.base.losses.*": "training",
    "sentrs.data_collator": "training",
    # model merging
    "sentrs.base.merging": "merging",
    # the cross-encoder's LogitScore module, and its argument-compatibility decorators module
    "sentrs.cross_encoder.util": "cross-encoder modules",
    # the reference's backend/ module layout (sentrs' backend/ is laid out differently; being rewritten)
    "sentrs.backend.load": "backend layout",
    "sentrs.backend.optimize": "backend layout",
    "sentrs.backend.quantize": "backend layout",
    "sentrs.backend.utils": "backend layout",
}

# Names in a reference module's ``__all__`` that the sentrs module neither has nor refuses with
# NotYetAvailableError (everywhere else a missing name must raise it).
NAMES_NOT_YET: dict[str, str] = {
    "sentrs.backend._save_pretrained_wrapper": "backend layout",
    "sentrs.backend.backend_should_export": "backend layout",
    "sentrs.backend.backend_warn_to_save": "backend layout",
    "sentrs.backend.load_onnx_model": "backend layout",
    "sentrs.backend.load_openvino_model": "backend layout",
    "sentrs.backend.save_or_push_to_hub_model": "backend layout",
}


def _ours(reference_path: str) -> str:
    return "sentrs" + reference_path[len(REF) :]


def _not_yet(path: str) -> str | None:
    return next((topic for pattern, topic in NOT_YET.items() if fnmatch.fnmatchcase(path, pattern)), None)


def _reference_module_paths() -> list[str]:
    """Every module of the installed reference, from its files (nothing is imported)."""
    spec = importlib.util.find_spec(REF)
    assert spec is not None and spec.submodule_search_locations, "the reference is not installed"
    root = Path(next(iter(spec.submodule_search_locations)))
    paths = []
    for file in sorted(root.rglob("*.py")):
        parts = file.relative_to(root).with_suffix("").parts
        paths.append(".".join((REF, *(parts[:-1] if parts[-1] == "__init__" else parts))))
    return paths


def _reference_deprecated_paths() -> list[str]:
    from sentence_transformers.util.deprecated_import import DEPRECATED_MODULE_PATHS

    return sorted(DEPRECATED_MODULE_PATHS)


def _import(name: str) -> ModuleType | None:
    """The module, or None when it cannot be imported; warnings are the deprecation tests' business."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except ImportError:
        return None


def _fresh_import_warnings(name: str) -> tuple[ModuleType | None, set[type[Warning]]]:
    """Imports ``name`` as if for the first time; returns the module (or None) and the categories of the warnings
    that name the path."""
    sys.modules.pop(name, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            module = importlib.import_module(name)
        except ImportError:
            module = None
    return module, {w.category for w in caught if f"'{name}'" in str(w.message)}


def test_public_names() -> None:
    from sentrs.models import Dense as D2  # noqa: F401
    from sentrs.models import Pooling

    import sentrs
    from sentrs import SentenceTransformer, SimilarityFunction, quantize_embeddings  # noqa: F401
    from sentrs.base.modules import Dense, Normalize, Transformer  # noqa: F401
    from sentrs.sentence_transformer.modules import Pooling as P2
    from sentrs.util import cos_sim, dot_score  # noqa: F401

    assert P2 is Pooling
    assert sentrs.__version__


def test_reference_module_paths_import() -> None:
    """Each module path the reference has imports from sentrs too, unless NOT_YET lists it, and then it fails."""
    missing, stale = [], []
    for reference_path in _reference_module_paths():
        if _import(reference_path) is None:
            continue  # an optional dependency of the reference is missing here
        path = _ours(reference_path)
        imported = _import(path) is not None
        if _not_yet(path) is None and not imported:
            missing.append(path)
        elif _not_yet(path) is not None and imported:
            stale.append(path)
    assert not missing, f"reference paths missing from sentrs (implement them or add them to NOT_YET): {missing}"
    assert not stale, f"these import now; remove them from NOT_YET: {stale}"


def test_deprecated_paths_warn_like_the_reference() -> None:
    """Each old path the reference's import hook serves imports from sentrs with the same warning category."""
    missing, stale, different = [], [], []
    for reference_path in _reference_deprecated_paths():
        reference_module, reference_categories = _fresh_import_warnings(reference_path)
        if reference_module is None:
            continue
        path = _ours(reference_path)
        module, categories = _fresh_import_warnings(path)
        if _not_yet(path) is not None:
            if module is not None:
                stale.append(path)
        elif module is None:
            missing.append(path)
        elif categories != reference_categories:
            different.append(
                f"{path}: {sorted(c.__name__ for c in categories)}, reference "
                f"{sorted(c.__name__ for c in reference_categories)}"
            )
    assert not missing, f"deprecated reference paths missing from sentrs (implement or add to NOT_YET): {missing}"
    assert not stale, f"these import now; remove them from NOT_YET: {stale}"
    assert not different, f"warning categories differ from the reference: {different}"


def test_deprecated_alias_is_the_new_module() -> None:
    import sentrs.models
    import sentrs.models.Transformer

    import sentrs.sentence_transformer.modules
    from sentrs.base.modules.transformer import Transformer

    assert sentrs.models is sentrs.sentence_transformer.modules
    assert sentrs.models.Transformer is Transformer  # the class, not the module of the old path
    with pytest.warns(DeprecationWarning, match="sentrs.sentence_transformer.modules.pooling"):
        sys.modules.pop("sentrs.models.pooling", None)
        import sentrs.models.pooling
    assert sentrs.models.pooling is sys.modules["sentrs.sentence_transformer.modules.pooling"]


def test_reference_names_exist_or_fail_clearly() -> None:
    """Each name in a reference module's ``__all__`` is in the sentrs module or raises NotYetAvailableError."""
    from sentrs.exceptions import NotYetAvailableError

    silent, stale = [], []
    for reference_path in [*_reference_module_paths(), *_reference_deprecated_paths()]:
        reference_module = _import(reference_path)
        module = _import(_ours(reference_path))
        if reference_module is None or module is None:
            continue
        for name in getattr(reference_module, "__all__", ()):
            qualified = f"{_ours(reference_path)}.{name}"
            try:
                getattr(module, name)
            except NotYetAvailableError:
                continue
            except AttributeError:
                if qualified not in NAMES_NOT_YET:
                    silent.append(qualified)
                continue
            if qualified in NAMES_NOT_YET:
                stale.append(qualified)
    assert not silent, f"missing without NotYetAvailableError (see sentrs._unavailable): {sorted(set(silent))}"
    assert not stale, f"these exist now; remove them from NAMES_NOT_YET: {stale}"


def test_not_yet_available_names_fail_clearly() -> None:
    import sentrs.losses
    from sentrs.models import CLIPModel

    import sentrs
    import sentrs.base
    import sentrs.util
    from sentrs.sentence_transformer.modules.clip_model import CLIPModel as C2

    assert CLIPModel is C2
    assert callable(sentrs.util.all_gather_padded) and callable(sentrs.util.stack_padded_token_embeddings)
    # Private names and names the reference does not have either are plain AttributeErrors.
    assert not hasattr(sentrs.losses, "_private")
    assert not hasattr(sentrs.models, "NoSuchModule")
    assert not hasattr(sentrs.util, "no_such_helper")
    # A package that refuses every public name still lets the import system load its submodules.
    from sentrs.sentence_transformer.modules import pooling  # noqa: F401


def test_environment_helpers_match_the_reference() -> None:
    import sentence_transformers.util as ref_util

    import sentrs.util as util

    assert util.is_datasets_available() == ref_util.is_datasets_available()
    assert util.is_accelerate_available() == ref_util.is_accelerate_available()
    assert util.is_training_available() == ref_util.is_training_available()
    assert util.is_dist_initialized() is False
    assert (util.get_rank(), util.get_world_size()) == (0, 1)
    assert util.get_device_name() == ref_util.get_device_name()
    assert util.check_package_availability("transformers", "huggingface")
    assert not util.check_package_availability("no-such-package-sentrs", "huggingface")
    assert util.check_version_requirements({"numpy": ">=1", "python": ">=3.10"}) is None
    assert util.check_version_requirements({"numpy": ">=1", "x": {"specifier": "=>"}}) is None  # unreadable: skipped
    for check in (util.check_version_requirements, ref_util.check_version_requirements):
        with pytest.raises(ImportError, match="numpy"):
            check({"numpy": "<1", "torch": ">=1"}, source="m")


def test_file_helpers_on_a_local_folder(tmp_path: Path) -> None:
    import sentrs.util as util

    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text("{}")
    assert util.load_file_path(str(tmp_path), "config.json", subfolder="1_Pooling") == str(
        tmp_path / "1_Pooling" / "config.json"
    )
    assert util.load_file_path(str(tmp_path), "modules.json") is None
    assert util.is_sentence_transformer_model(str(tmp_path)) is False
    assert util.load_dir_path(str(tmp_path), "1_Pooling") == str(tmp_path / "1_Pooling")
    assert util.load_dir_path(str(tmp_path), "2_Dense") is None
    for bad in ("../secret", "/etc/passwd", "a\\..\\..\\b"):
        with pytest.raises(ValueError, match="relative path"):
            util.load_file_path(str(tmp_path), bad)


def test_misc_helpers() -> None:
    import functools
    import logging

    import sentrs.util as util

    assert util.similarity_fct_name(util.cos_sim) == "cos_sim"
    assert util.similarity_fct_name(functools.partial(util.cos_sim)) == "cos_sim"
    before = logging.root.manager.disable
    with util.disable_logging(logging.WARNING):
        assert logging.root.manager.disable == logging.WARNING
    assert logging.root.manager.disable == before


def test_importing_sentrs_does_not_import_torch() -> None:
    """Names load on first use: the import itself, and the model names, stay torch-free."""
    import subprocess

    script = (
        "import sys\n"
        "import sentrs\n"
        "from sentrs import CrossEncoder, SentenceTransformer, SparseEncoder\n"
        "from sentrs.util import quantize_embeddings, is_datasets_available, get_rank, load_file_path\n"
        "import sentrs.ops, sentrs.util.environment, sentrs.util.deprecated_import\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, sorted(sys.modules)\n"
        "from sentrs import util\n"
        "util.cos_sim, util.semantic_search, util.SimilarityFunction\n"
        "assert 'torch' not in sys.modules\n"
        "util.cos_sim([[1.0]], [[1.0]])  # a tensor result needs torch\n"
        "assert 'torch' in sys.modules\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ok" in result.stdout
