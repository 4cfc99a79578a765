"""Resolving a model name to a local folder: a local path, the Hugging Face cache, or a download."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["resolve_model_dir"]

# Hub ids of classic checkpoints that live without an organisation prefix; every other bare name gets the
# model type's default organisation, as in the reference.
_UNPREFIXED_FAMILIES = (
    "albert-",
    "bert-",
    "camembert-",
    "ctrl",
    "distilbert-",
    "distilgpt2",
    "distilroberta-",
    "flaubert",
    "gpt2",
    "openai-gpt",
    "roberta-",
    "t5-",
    "transfo-xl-",
    "xlm-",
    "xlnet-",
)

# Files only other backends or frameworks need; a torch download skips them.
_SKIP_PATTERNS = ["*.h5", "*.ot", "*.msgpack", "onnx/*", "openvino/*", "*.onnx", "*.tflite", "*.gguf"]


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").upper() in ("1", "ON", "YES", "TRUE")


def resolve_model_dir(
    model_name_or_path: str | os.PathLike[str],
    *,
    default_organization: str | None = None,
    cache_folder: str | None = None,
    revision: str | None = None,
    token: bool | str | None = None,
    local_files_only: bool = False,
    backend: str = "torch",
    model_kwargs: dict[str, Any] | None = None,
) -> str:
    """Returns a local folder holding the model.

    A local folder is used as is. Otherwise the name is a Hub id (a bare name gets ``default_organization/``
    prefixed): the local cache answers first, and a download runs unless ``local_files_only`` or
    ``HF_HUB_OFFLINE`` forbid it.

    Raises:
        TypeError: the name is neither a str nor an ``os.PathLike``.
        NotADirectoryError: the path names a file.
        FileNotFoundError: the name looks like a local path but nothing is there.
        OSError: the Hub id is neither cached nor downloadable.
    """
    if isinstance(model_name_or_path, os.PathLike):
        model_name_or_path = os.fspath(model_name_or_path)
    if not isinstance(model_name_or_path, str):
        raise TypeError(
            f"model_name_or_path must be a str (a local folder or a Hub id), got {type(model_name_or_path).__name__}"
        )
    path = os.path.expanduser(model_name_or_path)
    if os.path.isdir(path):
        return path
    if os.path.isfile(path):
        raise NotADirectoryError(f"model_name_or_path must be a folder or a Hub id, got the file {path!r}")
    looks_local = path.startswith((".", "/", "~")) or path.count("/") > 1 or (os.sep != "/" and os.sep in path)
    if looks_local or not path:
        raise FileNotFoundError(f"model folder not found: {model_name_or_path!r}")
    repo_id = path
    if "/" not in repo_id and default_organization and not repo_id.startswith(_UNPREFIXED_FAMILIES):
        repo_id = f"{default_organization}/{repo_id}"
    from huggingface_hub import snapshot_download

    if cache_folder is None:
        cache_folder = os.environ.get("SENTENCE_TRANSFORMERS_HOME")
    kwargs: dict[str, Any] = {
        "repo_id": repo_id,
        "revision": revision,
        "token": token,
        "cache_dir": cache_folder,
        # Exported files are many (one per optimisation level and quantisation); only the requested one is fetched.
        "ignore_patterns": _SKIP_PATTERNS,
    }
    offline = local_files_only or _offline()
    try:
        folder = snapshot_download(**kwargs, local_files_only=True)
    except Exception as cached_exc:
        if offline:
            reason = "local_files_only=True" if local_files_only else "HF_HUB_OFFLINE is set"
            raise OSError(
                f"model {repo_id!r} is not a local folder and is not in the Hugging Face cache, and {reason}, "
                "so it cannot be downloaded"
            ) from cached_exc
        try:
            folder = snapshot_download(**kwargs)
        except Exception as exc:
            raise OSError(f"could not download model {repo_id!r} from the Hugging Face Hub: {exc}") from exc
    if backend != "torch":
        for prefix in ["", *_module_folders(folder)]:
            for filename in backend_file_candidates(backend, model_kwargs or {}):
                _fetch_optional(repo_id, f"{prefix}{filename}", revision, token, cache_folder, offline)
    return folder


def _module_folders(folder: str) -> list[str]:
    """``path/`` of every module in the folder's ``modules.json`` that lives in a subfolder (Router routes too)."""
    import json

    try:
        with open(os.path.join(folder, "modules.json"), encoding="utf-8") as f:
            entries = json.load(f)
    except (OSError, ValueError):
        return []
    paths = [e.get("path") for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    return [f"{p.strip('/')}/" for p in paths if isinstance(p, str) and p.strip("/") and ".." not in p]


def backend_file_candidates(backend: str, model_kwargs: dict[str, Any]) -> list[str]:
    """Repository paths the backend may load for ``model_kwargs`` (``file_name``, ``subfolder``), with their
    companion files (ONNX external data, OpenVINO ``.bin`` weights)."""
    default = {"onnx": "model.onnx", "openvino": "openvino_model.xml"}.get(backend)
    if default is None:
        return []
    file_name = model_kwargs.get("file_name") or default
    subfolder = model_kwargs.get("subfolder") or ""
    if not isinstance(file_name, str) or not isinstance(subfolder, str):
        return []
    paths = [f"{subfolder}/{file_name}".lstrip("/"), f"{subfolder}/{backend}/{file_name}".lstrip("/")]
    if backend == "openvino" and file_name != default:
        paths.append(f"{subfolder}/openvino/{default}".lstrip("/"))
    if backend == "openvino":  # converted from the fp32 ONNX file when no OpenVINO file exists
        paths.append(f"{subfolder}/onnx/model.onnx".lstrip("/"))
    out: list[str] = []
    for path in dict.fromkeys(paths):
        out.append(path)
        out.append(path[: -len(".xml")] + ".bin" if path.endswith(".xml") else path + "_data")
    return out


def _fetch_optional(
    repo_id: str, filename: str, revision: str | None, token: Any, cache_folder: str | None, offline: bool
) -> None:
    """Downloads one file into the same snapshot when the repository has it; a missing file is not an error."""
    from huggingface_hub import hf_hub_download

    try:
        hf_hub_download(
            repo_id, filename, revision=revision, token=token, cache_dir=cache_folder, local_files_only=offline
        )
    except Exception:
        return
