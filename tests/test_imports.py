"""The import paths user code takes from sentence-transformers exist in sentrs."""

from __future__ import annotations

import pytest


def test_public_names() -> None:
    import sentrs
    from sentrs import SentenceTransformer, SimilarityFunction, quantize_embeddings  # noqa: F401
    from sentrs.base.modules import Dense, Normalize, Transformer  # noqa: F401
    from sentrs.models import Dense as D2  # noqa: F401
    from sentrs.models import Pooling
    from sentrs.sentence_transformer.modules import Pooling as P2
    from sentrs.util import cos_sim, dot_score  # noqa: F401

    assert P2 is Pooling
    assert sentrs.__version__


def test_not_yet_available_paths_fail_clearly() -> None:
    import sentrs.evaluation
    import sentrs.losses
    from sentrs.exceptions import NotYetAvailableError

    with pytest.raises(ImportError, match="sentrs.losses.MultipleNegativesRankingLoss is not available"):
        from sentrs.losses import MultipleNegativesRankingLoss  # noqa: F401
    with pytest.raises(NotYetAvailableError, match="evaluators"):
        sentrs.evaluation.InformationRetrievalEvaluator  # noqa: B018
    assert not hasattr(sentrs.losses, "_private")


def test_importing_sentrs_does_not_import_torch() -> None:
    """Names load on first use: the import itself, and the model names, stay torch-free."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "import sentrs\n"
        "from sentrs import CrossEncoder, SentenceTransformer, SparseEncoder\n"
        "from sentrs.util import quantize_embeddings\n"
        "import sentrs.ops, sentrs.backend.lite.models\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
        "from sentrs import util\n"
        "util.cos_sim\n"
        "assert 'torch' in sys.modules\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ok" in result.stdout
