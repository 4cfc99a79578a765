"""Activation smoothing before dynamic int8 quantisation of an ONNX graph (SmoothQuant, calibrated without data).

Dynamic quantisation gives each MatMul input one int8 scale for the whole tensor, so a few channels with large
activations cost every other channel its precision. Smoothing divides each input channel ``j`` by
``s_j = max|x_j| ** alpha / max|w_j| ** (1 - alpha)`` (a ``Mul`` node in front of the MatMul) and multiplies row ``j``
of the weight by ``s_j``: the fp32 graph computes the same function, and quantisation error is shared between the
activations and the weights. MatMuls that read the same tensor (query, key and value) share one scale and one ``Mul``.

``max|x_j|`` comes from running the graph on random token sequences of the model's own vocabulary: the outlier channels
of transformer activations are a property of the weights, and show up on any input, so no calibration data is needed.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

__all__ = ["calibration_inputs", "smooth_onnx_model"]

#: Graphs larger than this (bytes) are written with external data: a protobuf cannot exceed 2 GiB.
_EXTERNAL_DATA_BYTES = 1 << 30


def calibration_inputs(
    tokenizer: Any,
    input_names: list[str],
    batches: int = 8,
    batch_size: int = 32,
    seed: int = 0,
) -> list[dict[str, np.ndarray]]:
    """Feeds of random token sequences (8-64 ordinary vocabulary tokens, then the tokenizer's own special tokens).

    The random ids are decoded to text and tokenised again, so special tokens, token type ids and any other input
    come out as the tokenizer makes them for real text.
    """
    rng = np.random.default_rng(seed)
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    vocab = np.array([i for i in range(len(tokenizer)) if i not in special], dtype=np.int64)
    if vocab.size == 0:
        raise ValueError("the tokenizer has no ordinary tokens to build calibration inputs from")
    feeds = []
    for _ in range(batches):
        lengths = rng.integers(8, 65, size=batch_size)
        texts = [tokenizer.decode(rng.choice(vocab, size=int(n)).tolist()) for n in lengths]
        encoded = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="np")
        feed = {name: np.asarray(encoded[name], dtype=np.int64) for name in input_names if name in encoded}
        missing = [name for name in input_names if name not in feed]
        if missing:
            raise ValueError(f"the tokenizer does not produce the graph inputs {missing}; cannot calibrate smoothing")
        feeds.append(feed)
    return feeds


def _save(model: Any, path: str) -> None:
    import onnx

    large = sum(t.ByteSize() for t in model.graph.initializer) > _EXTERNAL_DATA_BYTES
    onnx.save(model, path, save_as_external_data=large, location=os.path.basename(path) + "_data" if large else None)


def _matmul_groups(model: Any) -> dict[str, list[tuple[int, Any]]]:
    """MatMul nodes (with their positions) whose second input is a 2-D weight, grouped by the tensor they read."""
    inits = {t.name: t for t in model.graph.initializer}
    groups: dict[str, list[tuple[int, Any]]] = {}
    for position, node in enumerate(model.graph.node):
        weight = inits.get(node.input[1]) if node.op_type == "MatMul" else None
        # fp32 weights only: the inserted scale and the probed activations are fp32.
        if weight is not None and len(weight.dims) == 2 and weight.data_type == 1:
            groups.setdefault(node.input[0], []).append((position, node))
    return groups


def _activation_ranges(model: Any, names: list[str], feeds: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-channel ``max |x|`` of each named tensor over the real (unmasked) tokens of ``feeds``."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    for name in names:
        if name not in known:
            probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    with tempfile.TemporaryDirectory(prefix="sentrs-smooth-") as tmp:
        path = os.path.join(tmp, "probe.onnx")
        _save(probe, path)
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        graph_inputs = {i.name for i in session.get_inputs()}
        ranges: dict[str, np.ndarray] = {}
        for feed in feeds:
            values = session.run(names, {k: v for k, v in feed.items() if k in graph_inputs})
            mask = feed["attention_mask"].astype(bool) if "attention_mask" in feed else None
            for name, value in zip(names, values):
                value = np.abs(np.asarray(value, dtype=np.float32))
                if mask is not None and value.ndim == 3 and value.shape[:2] == mask.shape:
                    value = value[mask]
                peak = value.reshape(-1, value.shape[-1]).max(axis=0)
                ranges[name] = np.maximum(ranges[name], peak) if name in ranges else peak
    return ranges


def smooth_onnx_model(src: str, dst: str, feeds: list[dict[str, np.ndarray]], alpha: float) -> int:
    """Writes the smoothed graph of ``src`` to ``dst``; returns how many MatMul inputs were smoothed.

    ``alpha`` in (0, 1]: the share of each channel's range moved from the activation into the weight.
    """
    import onnx
    from onnx import numpy_helper

    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"the smoothing alpha must be in (0, 1], got {alpha!r}")
    model = onnx.load(src)
    groups = _matmul_groups(model)
    if not groups:
        _save(model, dst)
        return 0
    inits = {t.name: t for t in model.graph.initializer}
    users: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            users[name] = users.get(name, 0) + 1
    ranges = _activation_ranges(model, list(groups), feeds)
    inserted: dict[int, Any] = {}
    for name, members in groups.items():
        nodes = [node for _, node in members]
        weights = [numpy_helper.to_array(inits[n.input[1]]) for n in nodes]
        # A weight that something else also reads cannot be rescaled for this MatMul alone.
        if any(users.get(n.input[1], 0) > 1 for n in nodes):
            continue
        if any(w.shape[0] != ranges[name].shape[0] for w in weights):
            continue
        act = np.maximum(ranges[name].astype(np.float64), 1e-5)
        wmax = np.maximum(np.max([np.abs(w).max(axis=1) for w in weights], axis=0).astype(np.float64), 1e-5)
        scale = np.clip(act**alpha / wmax ** (1.0 - alpha), 1e-3, 1e3)
        scale_name, out_name = f"{name}/smooth_scale", f"{name}/smoothed"
        model.graph.initializer.append(numpy_helper.from_array((1.0 / scale).astype(np.float32), scale_name))
        mul = onnx.helper.make_node("Mul", [name, scale_name], [out_name], name=f"{name}/smooth")
        for node, weight in zip(nodes, weights):
            scaled = (weight.astype(np.float64) * scale[:, None]).astype(weight.dtype)
            inits[node.input[1]].CopyFrom(numpy_helper.from_array(scaled, node.input[1]))
            node.input[0] = out_name
        inserted[members[0][0]] = mul
    order = []
    for position, node in enumerate(model.graph.node):
        if position in inserted:  # right before the first MatMul that reads it: the order stays topological
            order.append(inserted[position])
        kept = onnx.NodeProto()
        kept.CopyFrom(node)
        order.append(kept)
    del model.graph.node[:]
    model.graph.node.extend(order)
    _save(model, dst)
    return len(inserted)
