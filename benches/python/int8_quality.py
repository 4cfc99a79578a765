"""Dynamic int8 ONNX quality on the CPU this runs on: mean cosine of int8 embeddings to fp32 (ONNX Runtime both).

The measurement of ``tests/backend/test_onnx_openvino.py::test_dynamic_int8_quality`` (bar 0.99) without torch in the
loop, so that it also runs under an emulator. ``export_dynamic_quantized_onnx_model`` is given the preset
``int8_preset_for_cpu()`` picks for this CPU, and ``avx2`` (the preset that cannot saturate on any x86 CPU).

An AVX2-only CPU (no AVX-512, no VNNI) can be checked on any x86-64 machine with Debian's ``qemu-user``: cpuid then
reports what the emulated CPU has, and ONNX Runtime, torch and sentrs dispatch on it. Results are exact; timings
are meaningless (hundreds of times slower). Export the fp32 folder natively first (``--export-to``), then::

    python benches/python/int8_quality.py --export-to /tmp/minilm_onnx
    qemu-x86_64 -cpu EPYC-Milan "$(which python)" benches/python/int8_quality.py --folder /tmp/minilm_onnx

The texts are the first ``--n`` WordNet glosses.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np

import benchutil


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", help="a model folder with onnx/model.onnx (fp32); copied before quantising")
    parser.add_argument("--export-to", help="export the bundled MiniLM to ONNX into this folder and stop")
    parser.add_argument("--n", type=int, default=200, help="number of glosses (default 200, as the test)")
    args = parser.parse_args()

    import sentrs
    from sentrs import ops
    from sentrs.backend import export_dynamic_quantized_onnx_model
    from sentrs.backend.onnx import int8_preset_for_cpu

    if args.export_to:
        shutil.rmtree(args.export_to, ignore_errors=True)
        shutil.copytree(benchutil.model_path(), args.export_to)
        sentrs.SentenceTransformer(args.export_to, backend="onnx", device="cpu").save(args.export_to)
        print(f"exported {args.export_to}")
        return
    if not args.folder or not os.path.isfile(os.path.join(args.folder, "onnx", "model.onnx")):
        raise SystemExit("--folder must name a model folder with onnx/model.onnx (make one with --export-to)")
    start = time.perf_counter()
    glosses = benchutil.wordnet_glosses(args.n)
    print(f"{ops.cpu_summary()} | int8 preset for this CPU: {int8_preset_for_cpu()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "model")
        shutil.copytree(args.folder, folder)
        fp32 = sentrs.SentenceTransformer(folder, backend="onnx", device="cpu")
        want = fp32.encode(glosses)
        for preset in dict.fromkeys([int8_preset_for_cpu(), "avx2"]):
            export_dynamic_quantized_onnx_model(fp32, preset, folder)
            int8 = sentrs.SentenceTransformer(
                folder, backend="onnx", device="cpu", model_kwargs={"file_name": f"onnx/model_qint8_{preset}.onnx"}
            )
            cosine = float(np.sum(int8.encode(glosses) * want, axis=1).mean())
            print(
                f"preset {preset}: mean cosine to fp32 {cosine:.4f} over {len(glosses)} glosses (bar 0.99) "
                f"[{time.perf_counter() - start:.0f} s]",
                flush=True,
            )


if __name__ == "__main__":
    main()
