"""``ModelCardTemplate``: the model-card templates of sentence-transformers before v3, for the old ``fit`` API.

Model cards are written by :mod:`sentrs.sentence_transformer.model_card` now; this module keeps the old templates
(and their ``{PLACEHOLDER}`` names) importable for scripts that fill them in themselves. The reference keeps it for
backwards compatibility only and plans to remove it.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from sentrs.util.misc import fullname

__all__ = ["ModelCardTemplate"]

logger = logging.getLogger(__name__)


class ModelCardTemplate:
    """Markdown templates with ``{PLACEHOLDER}`` fields, filled by ``str.replace``, and two helpers that fill some.

    ``__MODEL_CARD__`` is the whole card (``{MODEL_NAME}``, ``{NUM_DIMENSIONS}``, ``{TAGS}``, ``{DATASETS}``,
    ``{FULL_MODEL_STR}`` and the sections of ``__DEFAULT_VARS__``); ``__TRAINING_SECTION__`` (``{LOSS_FUNCTIONS}``,
    ``{FIT_PARAMETERS}``) and ``__USAGE_TRANSFORMERS__`` (``{MODEL_NAME}``, ``{POOLING_FUNCTION}``,
    ``{POOLING_FUNCTION_NAME}``, ``{POOLING_MODE}``) fill two of those sections.
    """

    __TAGS__: ClassVar[list[str]] = ["sentence-transformers", "feature-extraction", "sentence-similarity"]
    __DEFAULT_VARS__: ClassVar[dict[str, str]] = {
        "{PIPELINE_TAG}": "sentence-similarity",
        "{MODEL_DESCRIPTION}": "<!--- What the model is for and how it was made -->",
        "{TRAINING_SECTION}": "",
        "{USAGE_TRANSFORMERS_SECTION}": "",
        "{EVALUATION}": "<!--- How the model was evaluated, and the results -->",
        "{CITING}": "<!--- Who made the model, and where to read more about it -->",
    }

    __MODEL_CARD__ = """
---
library_name: sentence-transformers
pipeline_tag: {PIPELINE_TAG}
tags:
{TAGS}
{DATASETS}
---

# {MODEL_NAME}

A [sentence-transformers](https://www.SBERT.net) model that turns sentences and paragraphs into
{NUM_DIMENSIONS}-dimensional dense vectors, for semantic search, clustering and similar tasks.

{MODEL_DESCRIPTION}

## Usage (Sentence-Transformers)

Install [sentence-transformers](https://www.SBERT.net):

```
pip install -U sentence-transformers
```

and embed sentences with the model:

```python
from sentence_transformers import SentenceTransformer

sentences = ["The first example sentence", "And a second one"]

model = SentenceTransformer('{MODEL_NAME}')
embeddings = model.encode(sentences)
print(embeddings)
```

{USAGE_TRANSFORMERS_SECTION}

## Evaluation Results

{EVALUATION}

The *Sentence Embeddings Benchmark* evaluates the model automatically: [https://seb.sbert.net](https://seb.sbert.net?model_name={MODEL_NAME})

{TRAINING_SECTION}

## Full Model Architecture
```
{FULL_MODEL_STR}
```

## Citing & Authors

{CITING}

"""

    __TRAINING_SECTION__ = """
## Training
Training objectives (DataLoader and loss):

{LOSS_FUNCTIONS}

Arguments given to fit():
```
{FIT_PARAMETERS}
```
"""

    __USAGE_TRANSFORMERS__ = """\n
## Usage (HuggingFace Transformers)
Without sentence-transformers, run the transformer on the tokenized input and pool its token embeddings yourself:

```python
from transformers import AutoTokenizer, AutoModel
import torch

{POOLING_FUNCTION}

sentences = ['The first example sentence', 'And a second one']

# The tokenizer and the transformer from the Hugging Face Hub
tokenizer = AutoTokenizer.from_pretrained('{MODEL_NAME}')
model = AutoModel.from_pretrained('{MODEL_NAME}')

encoded_input = tokenizer(sentences, padding=True, truncation=True, return_tensors='pt')

# Token embeddings
with torch.no_grad():
    model_output = model(**encoded_input)

# One vector per sentence, here by {POOLING_MODE} pooling
sentence_embeddings = {POOLING_FUNCTION_NAME}(model_output, encoded_input['attention_mask'])

print("Sentence embeddings:")
print(sentence_embeddings)
```

"""

    @staticmethod
    def model_card_get_pooling_function(pooling_mode: str) -> tuple[str, str] | None:
        """The name and Python source of a pooling function for ``__USAGE_TRANSFORMERS__``.

        Args:
            pooling_mode: ``"max"``, ``"mean"`` or ``"cls"``.

        Returns:
            ``(function name, source)``, for ``{POOLING_FUNCTION_NAME}`` and ``{POOLING_FUNCTION}``; None for other
            modes.
        """
        return _POOLING_FUNCTIONS.get(pooling_mode)

    @staticmethod
    def get_train_objective_info(dataloader: Any, loss: Any) -> list[str] | str:
        """Markdown describing one training objective of the old ``fit``: the DataLoader and the loss.

        The DataLoader's parameters are its ``get_config_dict()`` when it has one, else its batch size and the
        classes of its sampler and batch sampler; the loss's are its ``get_config_dict()``.

        Returns:
            ``[dataloader markdown, loss markdown]``; ``""`` (with a warning logged) when the objective cannot be
            described, e.g. for a DataLoader without a length.
        """
        try:
            if hasattr(dataloader, "get_config_dict"):
                loader_params = dataloader.get_config_dict()
            else:
                loader_params = {"batch_size": getattr(dataloader, "batch_size", "unknown")}
                for attribute in ("sampler", "batch_sampler"):
                    if hasattr(dataloader, attribute):
                        loader_params[attribute] = fullname(getattr(dataloader, attribute))
            dataloader_md = (
                f"**DataLoader**:\n\n`{fullname(dataloader)}` of length {len(dataloader)} with parameters:\n"
                f"```\n{loader_params}\n```"
            )
            loss_md = f"**Loss**:\n\n`{fullname(loss)}` "
            if hasattr(loss, "get_config_dict"):
                loss_md += f"with parameters:\n  ```\n  {loss.get_config_dict()}\n  ```"
            return [dataloader_md, loss_md]
        except Exception as exc:
            logger.warning(f"Could not describe the training objective for the model card: {exc}")
            return ""


_MAX_POOLING = """
# Max pooling: the largest value of each dimension over the tokens, padding excluded.
def max_pooling(model_output, attention_mask):
    token_embeddings = model_output[0]  # the first output holds the token embeddings
    padding = attention_mask.unsqueeze(-1).expand(token_embeddings.size()) == 0
    return token_embeddings.masked_fill(padding, -1e9).max(dim=1).values
"""

_MEAN_POOLING = """
# Mean pooling: the average of the token embeddings, padding excluded.
def mean_pooling(model_output, attention_mask):
    token_embeddings = model_output[0]  # the first output holds the token embeddings
    mask = attention_mask.unsqueeze(-1).expand(token_embeddings.size()).to(token_embeddings.dtype)
    return (token_embeddings * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
"""

_CLS_POOLING = """
# CLS pooling: the embedding of the first token.
def cls_pooling(model_output, attention_mask):
    return model_output[0][:, 0]
"""

_POOLING_FUNCTIONS = {
    "max": ("max_pooling", _MAX_POOLING),
    "mean": ("mean_pooling", _MEAN_POOLING),
    "cls": ("cls_pooling", _CLS_POOLING),
}
