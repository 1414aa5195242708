"""SentenceEmbeddingFeaturizer: a pretrained sentence embedding as a dense feature.

Adds the message's embedding (``knowledge.embedding``) as a *sentence* feature of the
text, which the intent classifier reads beside the lexical features; words that share
no characters ("人不在了" / "去世", "扯证" / "结婚登记") land close together. The model
is loaded once per process and its weights are hash-checked; the embedding of a text is
cached, so the item linker reuses it for the same message.

Config ``model``: ``use`` (default), ``e5``, ``use+e5``, ``onnx:<dir>`` or ``none``; the
environment variable ``BANSHI_EMBEDDING_MODEL`` overrides it at training time. The model
that was trained with is stored in the model archive and used at load time, whatever the
environment says then (a changed deployer model file is refused).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from assistant.config.embedding_spec import NONE, resolve_spec
from knowledge.embedding import Encoder, EmbeddingError, load_encoder

logger = logging.getLogger(__name__)

META_FILE = "embedding.json"
BATCH = 64


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=True
)
class SentenceEmbeddingFeaturizer(DenseFeaturizer, GraphComponent):
    @classmethod
    def validate_config(cls, config: Dict[str, Any]) -> None:
        """Nothing to check beyond the defaults."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {**DenseFeaturizer.get_default_config(), "model": None}

    def __init__(
        self,
        config: Dict[str, Any],
        name: str,
        model_storage: ModelStorage,
        resource: Resource,
        spec: str,
        digest: Optional[str] = None,
    ) -> None:
        super().__init__(name, config)
        self._model_storage = model_storage
        self._resource = resource
        self.spec = spec
        self._digest = digest
        self._encoder: Optional[Encoder] = None
        if spec != NONE:
            self._encoder = load_encoder(spec)
            if digest and self._encoder is not None and self._encoder.digest != digest:
                raise EmbeddingError(
                    f"embedding model {spec!r} changed since training "
                    f"(weights {self._encoder.digest}, trained with {digest}): retrain"
                )

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """Retrain when the configured model (setting or config) changes."""
        return resolve_spec(config.get("model"))

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "SentenceEmbeddingFeaturizer":
        spec = resolve_spec(config.get("model"))
        return cls(config, execution_context.node_name, model_storage, resource, spec)

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "SentenceEmbeddingFeaturizer":
        try:
            with model_storage.read_from(resource) as directory:
                meta = json.loads((Path(directory) / META_FILE).read_text(encoding="utf-8"))
        except (ValueError, OSError):
            meta = {"spec": resolve_spec(config.get("model")), "digest": None}
        return cls(
            config, execution_context.node_name, model_storage, resource,
            meta["spec"], meta.get("digest"),
        )

    @property
    def encoder(self) -> Optional[Encoder]:
        return self._encoder

    def train(self, training_data: TrainingData) -> Resource:
        with self._model_storage.write_to(self._resource) as directory:
            meta = {"spec": self.spec, "digest": self._encoder.digest if self._encoder else None}
            (Path(directory) / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
        return self._resource

    def _featurize(self, messages: List[Message]) -> None:
        if self._encoder is None:
            return
        todo = [m for m in messages if isinstance(m.get(TEXT), str) and m.get(TEXT)]
        for start in range(0, len(todo), BATCH):
            batch = todo[start:start + BATCH]
            vectors = self._encoder.encode([m.get(TEXT) for m in batch])
            for message, vector in zip(batch, vectors):
                message.add_features(
                    Features(
                        np.asarray(vector, dtype=np.float32).reshape(1, -1),
                        FEATURE_TYPE_SENTENCE,
                        TEXT,
                        self._identifier,
                    )
                )

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self._featurize(training_data.training_examples)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        self._featurize(messages)
        return messages
