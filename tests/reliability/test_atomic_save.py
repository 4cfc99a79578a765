"""A save killed half-way leaves the previous folder intact and loadable, with identical outputs.

Each test saves a first version of a tiny model, then lets a child process save a changed model over it and kills
the child with SIGKILL at a chosen point of the save: inside a module's ``save`` (the files half-written), or right
before the finished folder is swapped into place. The child pauses there deterministically (it writes a "ready"
file and sleeps) so the kill always lands at that point. Children are forked from the test process (the model is
already in memory, so a child starts in milliseconds); they only write files, no torch compute.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import sentrs
import sentrs.base.model as base_model

TEXTS = ["a small test sentence", "another one, a bit longer than the first"]
PAUSE_S = 60.0  # how long a paused child sleeps; it is killed long before


def _snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder``."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _outputs(model: Any) -> np.ndarray:
    if isinstance(model, sentrs.CrossEncoder):
        return np.asarray(model.predict([(TEXTS[0], TEXTS[1]), (TEXTS[1], TEXTS[0])]))
    if isinstance(model, sentrs.SparseEncoder):
        return np.asarray(model.encode(TEXTS, convert_to_tensor=True).to_dense())
    if isinstance(model, sentrs.MultiVectorEncoder):
        return np.concatenate([np.asarray(e) for e in model.encode(TEXTS)])
    return np.asarray(model.encode(TEXTS))


def _pause(ready: str) -> None:
    Path(ready).write_text("ready")
    time.sleep(PAUSE_S)


def _child_save(model: Any, target: str, ready: str, where: str) -> None:
    """Runs in the forked child: pauses at ``where`` inside ``model.save(target)`` until killed."""
    if where == "module_save":
        module = list(model)[-1]
        original = type(module).save

        def paused_save(self: Any, path: str, *args: Any, **kwargs: Any) -> None:
            original(self, path, *args, **kwargs)  # this module's files are written, the folder is not finished
            _pause(ready)

        type(module).save = paused_save  # type: ignore[method-assign]
    else:  # "swap": every file written, the old folder about to be replaced
        original_swap = base_model._swap_into_place

        def paused_swap(tmp: str, dst: str) -> None:
            _pause(ready)
            original_swap(tmp, dst)

        base_model._swap_into_place = paused_swap  # type: ignore[assignment]
    model.save(target)
    os._exit(0)


def _kill_while_saving(model: Any, target: Path, tmp_path: Path, where: str) -> None:
    ready = tmp_path / f"ready-{where}"
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=_child_save, args=(model, str(target), str(ready), where))
    child.start()
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert child.is_alive(), f"the child exited ({child.exitcode}) before reaching {where}"
        assert time.monotonic() < deadline, f"the child never reached {where}"
        time.sleep(0.01)
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    assert child.exitcode == -signal.SIGKILL


def _perturb(model: Any) -> None:
    """Changes every weight, so the interrupted save would write different files."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)


@pytest.fixture(scope="module")
def tiny_model_folders(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: str) -> dict[str, str]:
    """One saved folder per model type, from the tiny BERT (an MLM head for the SparseEncoder)."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    root = tmp_path_factory.mktemp("atomic")
    torch.manual_seed(0)
    config = BertConfig.from_pretrained(tiny_bert_dir)
    mlm_dir = root / "mlm"
    BertForMaskedLM(config).save_pretrained(mlm_dir)
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(mlm_dir)
    builders: dict[str, Callable[[], Any]] = {
        "SentenceTransformer": lambda: sentrs.SentenceTransformer(tiny_bert_dir, device="cpu"),
        "SparseEncoder": lambda: sentrs.SparseEncoder(str(mlm_dir), device="cpu"),
        "CrossEncoder": lambda: sentrs.CrossEncoder(tiny_bert_dir, num_labels=1, device="cpu"),
        "MultiVectorEncoder": lambda: sentrs.MultiVectorEncoder(tiny_bert_dir, device="cpu"),
    }
    folders = {}
    for name, build in builders.items():
        torch.manual_seed(1)
        folder = root / name
        build().save(str(folder))
        folders[name] = str(folder)
    return folders


def _load(kind: str, folder: Path) -> Any:
    return getattr(sentrs, kind)(str(folder), device="cpu")


@pytest.mark.parametrize(
    ("kind", "where"),
    [
        ("SentenceTransformer", "module_save"),
        ("SentenceTransformer", "swap"),
        ("SparseEncoder", "module_save"),
        ("CrossEncoder", "module_save"),
        ("MultiVectorEncoder", "module_save"),
    ],
)
def test_killed_save_leaves_the_previous_folder(
    kind: str, where: str, tiny_model_folders: dict[str, str], tmp_path: Path
) -> None:
    import shutil

    target = tmp_path / "model"
    shutil.copytree(tiny_model_folders[kind], target)
    (target / "onnx").mkdir()  # a file of the old folder that the save does not produce (kept by a save)
    (target / "onnx" / "model.onnx").write_bytes(b"kept")
    before_files = _snapshot(target)
    before = _outputs(_load(kind, target))

    model = _load(kind, target)
    _perturb(model)
    assert not np.allclose(_outputs(model), before)  # the save in flight would change the outputs
    _kill_while_saving(model, target, tmp_path, where)

    assert _snapshot(target) == before_files
    np.testing.assert_array_equal(_outputs(_load(kind, target)), before)  # same files, same kernels: exact

    # The next save (not killed) replaces the folder, keeps the extra file, and leaves no swap leftovers behind.
    model.save(str(target))
    np.testing.assert_allclose(_outputs(_load(kind, target)), _outputs(model), atol=1e-6)  # float noise only
    assert (target / "onnx" / "model.onnx").read_bytes() == b"kept"
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".model.old-"))
    assert leftovers == []


def test_swap_is_atomic_where_the_system_can_exchange(tmp_path: Path) -> None:
    """On Linux the old folder and the new one trade places in one rename: at no instant is the target missing."""
    if not sys.platform.startswith("linux"):
        pytest.skip("renameat2(RENAME_EXCHANGE) is Linux-only; elsewhere the fallback renames twice")
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    (old / "v").write_text("1")
    (new / "v").write_text("2")
    assert base_model._exchange_paths(str(new), str(old))
    assert (old / "v").read_text() == "2" and (new / "v").read_text() == "1"
    calls: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(a: Any, b: Any) -> None:
        calls.append((str(a), str(b)))
        real_replace(a, b)

    (new / "v").write_text("3")
    os_replace = base_model.os.replace
    base_model.os.replace = spy  # type: ignore[assignment]
    try:
        base_model._swap_into_place(str(new), str(old))
    finally:
        base_model.os.replace = os_replace  # type: ignore[assignment]
    assert calls == []  # no rename-aside step: the exchange did it
    assert (old / "v").read_text() == "3" and not new.exists()


def test_saving_over_a_file_names_it(tiny_model_folders: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.write_text("a file, not a folder")
    model = _load("SentenceTransformer", Path(tiny_model_folders["SentenceTransformer"]))
    with pytest.raises(NotADirectoryError, match="model"):
        model.save(str(target))
    assert target.read_text() == "a file, not a folder"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # the temporary folder is removed


TRAIN_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    os.environ["HF_HUB_OFFLINE"] = "1"
    import datasets
    import sentrs
    from sentrs import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentrs.sentence_transformer.losses import MultipleNegativesRankingLoss
    import sentrs.base.model as base_model

    model_dir, out_dir, ready = sys.argv[1:4]
    model = sentrs.SentenceTransformer(model_dir, device="cpu")
    data = datasets.Dataset.from_dict(
        {"anchor": [f"question {i}" for i in range(16)], "positive": [f"answer {i}" for i in range(16)]}
    )
    original = base_model.BaseModel._write_folder

    def write_folder(self, path, *args, **kwargs):
        original(self, path, *args, **kwargs)
        if ".checkpoint-3.tmp-" in path:  # the third checkpoint's model files are written: pause, to be killed
            Path(ready).write_text("ready")
            time.sleep(60)

    base_model.BaseModel._write_folder = write_folder
    args = SentenceTransformerTrainingArguments(
        output_dir=out_dir, per_device_train_batch_size=4, num_train_epochs=1, save_steps=1, logging_steps=1,
        report_to="none", use_cpu=True, seed=0, save_total_limit=None,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data,
                                         loss=MultipleNegativesRankingLoss(model))
    trainer.train()
    """
)


@pytest.mark.slow
def test_killed_checkpoint_save_resumes_from_the_last_complete_one(
    tiny_model_folders: dict[str, str], tmp_path: Path
) -> None:
    """A training run killed while writing checkpoint-3 keeps checkpoint-2 intact; ``resume_from_checkpoint=True``
    passes over the half-written checkpoint-3 (which transformers' own lookup would pick) and resumes from 2."""
    from transformers.trainer_utils import get_last_checkpoint

    from sentrs.base.trainer import last_complete_checkpoint

    out = tmp_path / "run"
    ready = tmp_path / "ready"
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    model_dir = tiny_model_folders["SentenceTransformer"]
    child = subprocess.Popen(
        [sys.executable, str(script), model_dir, str(out), str(ready)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 110
    while not ready.exists():
        if child.poll() is not None:
            raise AssertionError(f"training ended before checkpoint-3: {child.stderr.read().decode()[-3000:]}")
        assert time.monotonic() < deadline, "training never reached checkpoint-3"
        time.sleep(0.05)
    checkpoint_2 = out / "checkpoint-2"
    files_2 = _snapshot(checkpoint_2)
    embeddings_2 = _outputs(_load("SentenceTransformer", checkpoint_2))
    child.kill()
    child.wait(10)
    assert child.stderr is not None
    child.stderr.close()

    assert _snapshot(checkpoint_2) == files_2
    np.testing.assert_array_equal(_outputs(_load("SentenceTransformer", checkpoint_2)), embeddings_2)
    assert get_last_checkpoint(str(out)) == str(out / "checkpoint-3")  # half-written, yet transformers' pick
    assert not (out / "checkpoint-3" / "trainer_state.json").exists()
    assert last_complete_checkpoint(str(out)) == str(checkpoint_2)

    import datasets

    from sentrs import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentrs.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = sentrs.SentenceTransformer(model_dir, device="cpu")
    data = datasets.Dataset.from_dict(
        {"anchor": [f"question {i}" for i in range(16)], "positive": [f"answer {i}" for i in range(16)]}
    )
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=4,
        num_train_epochs=1,
        save_steps=1,
        report_to="none",
        use_cpu=True,
        seed=0,
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=data, loss=MultipleNegativesRankingLoss(model)
    )
    trainer.train(resume_from_checkpoint=True)
    assert trainer.state.global_step == 4
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
