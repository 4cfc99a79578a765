"""Finding a model's files: in a local folder first, then on the Hugging Face Hub (or in its cache).

"Not there" is ``None``; anything else that goes wrong on the way to the Hub (authentication, rate limits, no
network) is raised, so a caller never mistakes a flaky connection for a missing file.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from tqdm.auto import tqdm

__all__ = ["disabled_tqdm", "http_get", "is_sentence_transformer_model", "load_dir_path", "load_file_path"]


class disabled_tqdm(tqdm):
    """A progress bar that never shows, for downloads that should stay quiet even when bars are enabled."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True
        super().__init__(*args, **kwargs)

    def __delattr__(self, attr: str) -> None:
        # huggingface_hub deletes the class-level _lock from bar instances, which a disabled bar never set.
        try:
            super().__delattr__(attr)
        except AttributeError:
            if attr != "_lock":
                raise


def _check_relative(path: Any, what: str) -> None:
    """Rejects absolute paths and ``..`` (POSIX and Windows forms) so a file name cannot leave the model folder."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"{what} must be a relative path, got {path!r}")
    text = os.fspath(path)
    parsed = PureWindowsPath(text)  # reads both / and \ as separators
    if parsed.anchor or ".." in parsed.parts or "\0" in str(text):
        raise ValueError(f"{what} must be a relative path inside the model without '..', got {str(text)!r}")


def _not_found_errors() -> tuple[type[BaseException], ...]:
    """The Hub's exceptions that mean "no such file or repository name" rather than "could not ask"."""
    from huggingface_hub import errors

    names = ("EntryNotFoundError", "RemoteEntryNotFoundError", "LocalEntryNotFoundError", "HFValidationError")
    return tuple(getattr(errors, name) for name in names if hasattr(errors, name))


def load_file_path(
    model_name_or_path: str,
    filename: str | Path,
    subfolder: str = "",
    token: bool | str | None = None,
    cache_folder: str | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
) -> str | None:
    """The local path of ``subfolder/filename`` of a model folder or Hub repository, or None when it has none.

    A local folder answers alone; a Hub id downloads the file (or takes it from the cache).

    Raises:
        ValueError: ``filename`` or ``subfolder`` is absolute or contains ``..``.
    """
    _check_relative(subfolder, "subfolder")
    _check_relative(filename, "filename")
    local = Path(model_name_or_path, subfolder, filename)
    if local.exists():
        return str(local)
    if Path(model_name_or_path).is_dir():
        return None
    from huggingface_hub import hf_hub_download

    in_repo = PurePosixPath(Path(subfolder, filename).as_posix())
    try:
        path = hf_hub_download(
            model_name_or_path,
            filename=in_repo.name,
            subfolder=None if str(in_repo.parent) == "." else str(in_repo.parent),
            revision=revision,
            token=token,
            cache_dir=cache_folder,
            local_files_only=local_files_only,
        )
    except _not_found_errors():
        return None
    return str(path)


def load_dir_path(
    model_name_or_path: str,
    subfolder: str,
    token: bool | str | None = None,
    cache_folder: str | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
) -> str | None:
    """The local path of the folder ``subfolder`` of a model folder or Hub repository, or None when it has none.

    A Hub id downloads only that folder. When the Hub cannot be asked (no network, rate limit), a cached copy is
    used; without one the original error is raised.

    Raises:
        ValueError: ``subfolder`` is absolute or contains ``..``.
        OSError: the download returned a snapshot without the folder.
    """
    _check_relative(subfolder, "subfolder")
    subfolder = Path(subfolder).as_posix()
    local = Path(model_name_or_path, subfolder)
    if local.exists():
        return str(local)
    if Path(model_name_or_path).is_dir():
        return None
    from huggingface_hub import errors, snapshot_download

    whole_repo = subfolder in ("", ".")
    kwargs: dict[str, Any] = {
        "repo_id": model_name_or_path,
        "revision": revision,
        "allow_patterns": None if whole_repo else f"{subfolder}/**",
        "token": token,
        "cache_dir": cache_folder,
        "tqdm_class": disabled_tqdm,
    }
    incomplete = getattr(errors, "IncompleteSnapshotError", ())  # a cache that lacks files: not "not there"
    try:
        repo = snapshot_download(**kwargs, local_files_only=local_files_only)
    except incomplete:
        raise
    except (errors.HFValidationError, errors.LocalEntryNotFoundError):
        return None
    except Exception as first_error:
        try:
            repo = snapshot_download(**kwargs, local_files_only=True)
        except Exception:
            raise first_error from None
        if not whole_repo and not Path(repo, subfolder).is_dir():
            raise first_error from None
    if not whole_repo and not Path(repo, subfolder).is_dir():
        raise OSError(f"could not download {subfolder!r} of {model_name_or_path!r}, and the cache does not have it")
    return str(Path(repo, subfolder))


def is_sentence_transformer_model(
    model_name_or_path: str,
    token: bool | str | None = None,
    cache_folder: str | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
) -> bool:
    """Whether the folder or Hub repository is a sentence-transformers model, i.e. has a ``modules.json``."""
    found = load_file_path(
        model_name_or_path,
        "modules.json",
        token=token,
        cache_folder=cache_folder,
        revision=revision,
        local_files_only=local_files_only,
    )
    return found is not None


def http_get(url: str, path: str) -> None:
    """Downloads ``url`` to ``path`` with a progress bar, through ``path + "_part"`` so ``path`` only ever holds a
    complete file; creates the parent folders.

    Raises:
        httpx.HTTPStatusError: the server answered with an error status (the HTTP client of ``huggingface_hub``).
        OSError: the file cannot be written.
    """
    from huggingface_hub import get_session

    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    partial = path + "_part"
    with get_session().stream("GET", url, follow_redirects=True) as response:
        response.raise_for_status()
        length = response.headers.get("Content-Length")
        progress = tqdm(
            unit="B",
            unit_scale=True,
            total=int(length) if length is not None else None,
            leave=False,
            desc=f"Downloading {os.path.basename(path)}",
        )
        try:
            with open(partial, "wb") as out:
                for chunk in response.iter_bytes(chunk_size=1 << 16):
                    out.write(chunk)
                    progress.update(len(chunk))
            os.replace(partial, path)
        except BaseException:
            if os.path.exists(partial):
                os.remove(partial)
            raise
        finally:
            progress.close()
