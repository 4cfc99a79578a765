"""The torch half of the model classes, attached the first time something needs torch.

In the reference, ``SentenceTransformer``, ``CrossEncoder`` and ``SparseEncoder`` are ``torch.nn.Sequential``
subclasses; user code relies on it (``isinstance(model, nn.Module)``, ``model.to(...)``, forward hooks,
``torch.compile``, ``transformers.Trainer``). sentrs keeps that, yet a process that only runs an exported ONNX or
OpenVINO model must never import torch. So the model classes derive from :class:`TorchLayer`, an empty class that
:func:`attach_torch` re-bases onto ``torch.nn.Sequential``:

- at import of :mod:`sentrs.base.model` when torch is already loaded (the usual case in training scripts), or
- the first time a model needs torch (the torch backend, an export, training, torch outputs).

From then on every model class is an ordinary ``nn.Sequential`` subclass. A model built torch-free before that (the
engine runs its exported file) gets its ``nn.Module`` state at attach time: an empty module list, as the reference's
ONNX models have no torch parameters in their transformer either.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from typing import Any

__all__ = ["TorchLayer", "attach_torch", "register_torch_free", "torch_attached"]


class _Unattached:
    """The base of :class:`TorchLayer` until torch is attached (a class of its own: ``object`` cannot be re-based)."""


class TorchLayer(_Unattached):
    """Base of the model classes: becomes ``torch.nn.Sequential`` when :func:`attach_torch` runs."""


_lock = threading.Lock()
_torch_free: weakref.WeakSet[Any] = weakref.WeakSet()


def torch_attached() -> bool:
    """Whether the model classes are ``torch.nn.Sequential`` subclasses yet."""
    return TorchLayer.__bases__[0] is not _Unattached


def attach_torch() -> None:
    """Imports torch and makes :class:`TorchLayer` (and so every model class) an ``nn.Sequential`` subclass."""
    if torch_attached():
        return
    with _lock:
        if torch_attached():
            return
        from torch import nn

        TorchLayer.__bases__ = (nn.Sequential,)
        for instance in list(_torch_free):
            nn.Sequential.__init__(instance)
        _torch_free.clear()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_one_torch_thread_after_fork)


def _one_torch_thread_after_fork() -> None:
    """In a forked child, torch runs on one thread: the parent's OpenMP workers do not exist there, so torch's first
    parallel region (a layer norm, a matrix product) would wait for them forever. torch's own DataLoader workers
    avoid it the same way; the Rust kernels likewise run on the calling thread after a fork (``sentrs.ops``)."""
    set_num_threads = getattr(sys.modules.get("torch"), "set_num_threads", None)
    if set_num_threads is not None:
        set_num_threads(1)


def register_torch_free(instance: Any) -> None:
    """Records a model built before torch was attached, so that it gets its ``nn.Module`` state at attach time."""
    with _lock:
        if torch_attached():
            from torch import nn

            nn.Sequential.__init__(instance)
        else:
            _torch_free.add(instance)


if "torch" in sys.modules:  # torch is loaded already: nothing to save by waiting
    attach_torch()
