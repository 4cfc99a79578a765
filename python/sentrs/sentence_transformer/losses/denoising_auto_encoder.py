"""``DenoisingAutoEncoderLoss`` (TSDAE): a decoder must rebuild the original text from the sentence embedding of a
damaged copy."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["DenoisingAutoEncoderLoss"]

logger = logging.getLogger(__name__)


class DenoisingAutoEncoderLoss(nn.Module):
    """Transformer-based Sequential Denoising Auto-Encoder (TSDAE): the model embeds a damaged text (words deleted,
    see :class:`~sentrs.sentence_transformer.datasets.DenoisingAutoEncoderDataset`), and a transformers decoder,
    cross-attending to that one embedding only, must predict the original text token by token. The loss is the
    decoder's cross-entropy (padding ignored). Unsupervised: any collection of sentences will do.

    The decoder is ``AutoModelForCausalLM`` of ``decoder_name_or_path`` with cross-attention added. With
    ``tie_encoder_decoder`` (the default) it is built from the encoder's own checkpoint and shares its weights
    with the encoder, which halves the parameters to train.

    Args:
        model: the SentenceTransformer to train; its first module must be a Transformer.
        decoder_name_or_path: the decoder's checkpoint; ignored (with a warning) when ``tie_encoder_decoder``, which
            uses the encoder's.
        tie_encoder_decoder: share the encoder's weights with the decoder.

    Raises:
        ValueError: ``decoder_name_or_path`` is missing without ``tie_encoder_decoder``, the model has no
            transformers model, the decoder's hidden size differs from the encoder's, the checkpoint has no causal
            LM head, or tied weights would need two different tokenizers.

    Requirements:
        1. (damaged_sentence, original_sentence) pairs, e.g. from ``DenoisingAutoEncoderDataset``.
        2. A damaged sentence with at least one token left.

    Inputs:
        +--------------------------------------------------+--------+
        | Texts                                            | Labels |
        +==================================================+========+
        | (damaged_sentence, original_sentence) pairs      | none   |
        +--------------------------------------------------+--------+

    Example:
        ::

            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import DenoisingAutoEncoderLoss

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            loss = DenoisingAutoEncoderLoss(model)
            columns = [["sat the mat", "stocks"], ["The cat sat on the mat.", "Stocks fell today."]]
            loss([model.preprocess(texts) for texts in columns], None).backward()
    """

    def __init__(
        self,
        model: SentenceTransformer,
        decoder_name_or_path: str | None = None,
        tie_encoder_decoder: bool = True,
    ) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        encoder_model = model.transformers_model
        if encoder_model is None or not hasattr(encoder_model, "config"):
            raise ValueError(
                "DenoisingAutoEncoderLoss needs a model whose first module is a Transformer with a transformers "
                f"model to train, got modules {[type(m).__name__ for m in model]}."
            )
        self.encoder = model
        self.tokenizer_encoder = model.tokenizer
        encoder_name_or_path = encoder_model.config._name_or_path
        if decoder_name_or_path is None and not tie_encoder_decoder:
            raise ValueError(
                "DenoisingAutoEncoderLoss needs decoder_name_or_path when tie_encoder_decoder=False, got None."
            )
        if tie_encoder_decoder:
            if decoder_name_or_path:
                logger.warning("When tie_encoder_decoder=True, the decoder_name_or_path will be invalid.")
            decoder_name_or_path = encoder_name_or_path
        assert decoder_name_or_path is not None
        self.tokenizer_decoder = AutoTokenizer.from_pretrained(decoder_name_or_path)
        self.need_retokenization = not isinstance(self.tokenizer_encoder, type(self.tokenizer_decoder))

        decoder_config = AutoConfig.from_pretrained(decoder_name_or_path)
        decoder_config.is_decoder = True
        decoder_config.add_cross_attention = True
        encoder_hidden = getattr(encoder_model.config, "hidden_size", None)
        decoder_hidden = getattr(decoder_config, "hidden_size", None)
        if encoder_hidden != decoder_hidden:
            raise ValueError(
                f"DenoisingAutoEncoderLoss needs a decoder with the encoder's hidden size: the encoder has "
                f"{encoder_hidden}, the decoder {decoder_name_or_path!r} has {decoder_hidden}."
            )
        try:
            self.decoder = AutoModelForCausalLM.from_pretrained(decoder_name_or_path, config=decoder_config)
        except ValueError as error:
            raise ValueError(
                f"The decoder {decoder_name_or_path!r} cannot serve as a decoder: DenoisingAutoEncoderLoss needs a "
                f"checkpoint with a causal language-modeling head (an 'XXXLMHead' class). {error}"
            ) from error
        if self.tokenizer_decoder.pad_token is None:
            self.tokenizer_decoder.pad_token = self.tokenizer_decoder.eos_token
            self.decoder.config.pad_token_id = self.decoder.config.eos_token_id
        if len(AutoTokenizer.from_pretrained(encoder_name_or_path)) != len(self.tokenizer_encoder):
            logger.warning(
                "WARNING: The vocabulary of the encoder has been changed. One might need to change the decoder "
                "vocabulary, too."
            )
        if tie_encoder_decoder:
            if self.need_retokenization:
                raise ValueError(
                    "DenoisingAutoEncoderLoss with tie_encoder_decoder=True needs one tokenizer for the encoder and "
                    f"the decoder, got {type(self.tokenizer_encoder).__name__} and "
                    f"{type(self.tokenizer_decoder).__name__}."
                )
            if len(self.tokenizer_encoder) != len(self.tokenizer_decoder):
                self.tokenizer_decoder = self.tokenizer_encoder
                self.decoder.resize_token_embeddings(len(self.tokenizer_decoder))
                logger.warning(
                    "Since the encoder vocabulary has been changed and --tie_encoder_decoder=True, now the new "
                    "vocabulary has also been used for the decoder."
                )
            _share_weights(encoder_model, getattr(self.decoder, self.decoder.base_model_prefix))

    def retokenize(self, sentence_features: dict[str, Any]) -> dict[str, Any]:
        """The texts of ``sentence_features`` decoded with the encoder's tokenizer and tokenized with the
        decoder's, on the same device."""
        input_ids = sentence_features["input_ids"]
        texts = self.tokenizer_encoder.batch_decode(
            input_ids, skip_special_tokens=True, clean_up_tokenization_spaces=True
        )
        encoded = self.tokenizer_decoder(
            texts, padding=True, truncation="longest_first", return_tensors="pt", max_length=None
        )
        return dict(encoded.to(input_ids.device))

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None) -> Tensor:
        """The decoder's cross-entropy on the original texts (second column) given the embeddings of the damaged
        ones (first column); ``labels`` are unused."""
        columns = list(sentence_features)
        if len(columns) != 2:
            raise ValueError(
                f"DenoisingAutoEncoderLoss expects 2 input columns (damaged, original), got {len(columns)}."
            )
        source, target = columns
        if self.need_retokenization:
            target = self.retokenize(target)
        embeddings = self.encoder(source)["sentence_embedding"]
        target_ids = target["input_ids"]
        decoder_output = self.decoder(
            input_ids=target_ids[:, :-1],
            encoder_hidden_states=embeddings[:, None],
            encoder_attention_mask=source["attention_mask"][:, 0:1],
            use_cache=False,
        )
        logits = decoder_output[0]
        cross_entropy = nn.CrossEntropyLoss(ignore_index=self.tokenizer_decoder.pad_token_id)
        return cross_entropy(logits.reshape(-1, logits.shape[-1]), target_ids[:, 1:].reshape(-1))

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {
            "decoder_name_or_path": self.decoder.config._name_or_path,
            "need_retokenization": self.need_retokenization,
        }

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the loss."""
        return CITATION


def _share_weights(encoder: nn.Module, decoder: nn.Module) -> None:
    """Makes each parameter of ``encoder`` that has a counterpart in ``decoder`` (same module path, same name) the
    decoder's parameter itself; the decoder's own parts (cross-attention, LM head) stay its own."""
    encoder_modules = dict(encoder.named_modules())
    shared = False
    for name, parameter in decoder.named_parameters():
        module_name, _, attribute = name.rpartition(".")
        module = encoder_modules.get(module_name)
        if module is not None and hasattr(module, attribute):
            setattr(module, attribute, parameter)
            shared = True
    if not shared:
        logger.warning("No encoder weights were tied to the decoder; are they the same architecture?")


CITATION = """
@inproceedings{wang-2021-TSDAE,
    title = "TSDAE: Using Transformer-based Sequential Denoising Auto-Encoderfor Unsupervised Sentence Embedding Learning",
    author = "Wang, Kexin and Reimers, Nils and Gurevych, Iryna",
    booktitle = "Findings of the Association for Computational Linguistics: EMNLP 2021",
    month = nov,
    year = "2021",
    address = "Punta Cana, Dominican Republic",
    publisher = "Association for Computational Linguistics",
    pages = "671--688",
    url = "https://arxiv.org/abs/2104.06979",
}
"""  # noqa: E501
