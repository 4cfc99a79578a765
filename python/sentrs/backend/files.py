"""Where an exported model file lives in a model folder, and whether it has to be exported first.

The reference's rules (``backend_should_export``): an explicit ``export`` wins; otherwise look for
``<subfolder>/<file_name>``, then ``<backend>/<file_name>``; a folder part of ``file_name`` moves into the subfolder;
export when nothing is found. sentrs also looks in its export cache, used when the model folder is read-only.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BackendFile", "export_cache_dir", "resolve_backend_file", "writable_target"]

logger = logging.getLogger(__name__)

DEFAULT_FILE = {"onnx": "model.onnx", "openvino": "openvino_model.xml"}
FILE_GLOB = {"onnx": "*.onnx", "openvino": "openvino*.xml"}


@dataclass
class BackendFile:
    """The resolved file of a backend model.

    Attributes:
        path: the absolute file path (it may not exist yet when ``export`` is True).
        subfolder: the folder part relative to the model folder (``onnx``, ``openvino``, ...).
        file_name: the file's base name.
        export: whether the file must be exported from the torch weights first.
    """

    path: str
    subfolder: str
    file_name: str
    export: bool


def export_cache_dir(model_dir: str) -> str:
    """A per-folder cache for exports of read-only model folders (``$SENTRS_CACHE`` or ``~/.cache/sentrs``)."""
    root = os.environ.get("SENTRS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "sentrs")
    digest = hashlib.sha1(os.path.realpath(model_dir).encode("utf-8")).hexdigest()[:16]
    return os.path.join(root, "exports", digest)


def resolve_backend_file(
    model_dir: str, backend: str, model_kwargs: dict[str, Any], warn_export: bool = True
) -> BackendFile:
    """Applies the reference's lookup rules to a local model folder; pops ``export``/``file_name``/``subfolder``.

    ``warn_export=False`` skips the warning that the file will be exported (for callers only probing).
    """
    if backend not in DEFAULT_FILE:
        raise ValueError(f"backend must be 'onnx' or 'openvino', got {backend!r}")
    export = model_kwargs.pop("export", None)
    file_name = model_kwargs.pop("file_name", None)
    subfolder = model_kwargs.pop("subfolder", None) or ""
    explicit_name = file_name is not None
    if file_name is None:
        file_name = DEFAULT_FILE[backend]
    if not isinstance(file_name, str) or not file_name:
        raise ValueError(f"model_kwargs['file_name'] must be a non-empty str, got {file_name!r}")
    parts = Path(file_name).parts
    if len(parts) > 1:
        subfolder = Path(subfolder, *parts[:-1]).as_posix()
        file_name = parts[-1]
    if ".." in Path(subfolder).parts or os.path.isabs(subfolder):
        raise ValueError(f"model_kwargs['subfolder'] must be a relative folder without '..', got {subfolder!r}")
    candidates = [Path(subfolder, file_name).as_posix()]
    if not subfolder or Path(subfolder).parts[-1] != backend:
        candidates.append(Path(subfolder, backend, file_name).as_posix())
    if export:
        chosen = candidates[-1] if not subfolder else candidates[0]
        return BackendFile(os.path.join(model_dir, chosen), os.path.dirname(chosen), file_name, True)
    for root in (model_dir, export_cache_dir(model_dir)):
        for rel in candidates:
            if os.path.isfile(os.path.join(root, rel)):
                return BackendFile(os.path.join(root, rel), os.path.dirname(rel), file_name, False)
    if explicit_name:
        found = sorted(p.relative_to(model_dir).as_posix() for p in Path(model_dir).glob(f"**/{FILE_GLOB[backend]}"))
        raise FileNotFoundError(
            f"model_kwargs['file_name']={file_name!r} was not found in {model_dir} (looked for {candidates}); "
            f"{backend} files there: {found or 'none'}. Pass export=True in model_kwargs to export it."
        )
    if warn_export:
        logger.warning("No %s file found in %s; exporting the model to %s", file_name, model_dir, backend)
    rel = candidates[-1]
    return BackendFile(os.path.join(model_dir, rel), os.path.dirname(rel), file_name, True)


def writable_target(model_dir: str, file: BackendFile) -> BackendFile:
    """``file`` itself when its folder can be written, else the same relative path in the export cache."""
    folder = os.path.dirname(file.path)
    try:
        os.makedirs(folder, exist_ok=True)
        if os.access(folder, os.W_OK):
            return file
    except OSError:
        pass
    cached = os.path.join(export_cache_dir(model_dir), file.subfolder, file.file_name)
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    logger.warning("%s is read-only; the export goes to %s", folder, cached)
    return BackendFile(cached, file.subfolder, file.file_name, file.export)
