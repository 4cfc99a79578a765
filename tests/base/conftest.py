"""The cross-encoder folders of tests/cross_encoder, shared here."""

from tests.cross_encoder.conftest import make_ce

__all__ = ["make_ce"]
