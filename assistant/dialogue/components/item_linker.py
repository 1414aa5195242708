"""ServiceItemLinker: add ranked service items (ids + scores) to the parse result.

Output property ``service_items``: ``[{"id", "name", "score"}, ...]`` best first
(possibly empty). The ``service_item`` entity is reserved for explicit choices
(quick-reply payloads such as ``/ask_materials{"service_item": "passport"}``). The index is built from the catalog at training time and stored
with the model, so a model answers the same way wherever it is loaded; catalog edits
published since (``knowledge.revisions``) are applied live by ``knowledge.live``
(aliases, names, new situations), without retraining.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from assistant.config.embedding_spec import resolve_spec
from knowledge.catalog import DEFAULT_CATALOG_DIR, catalog_files, fingerprint_files, load_catalog
from knowledge import live
from knowledge.embedding import load_encoder
from knowledge.linker import ItemLinker, LinkerConfig
from knowledge.not_covered import NOT_COVERED_FILE, load_not_covered

logger = logging.getLogger(__name__)

SERVICE_ITEMS = "service_items"
SERVICE_SCOPE = "service_scope"
# Training sentences of these intents teach the linker what "no item" looks like;
# the others, where an alias names the item unmistakably, are self-labelled examples.
NONE_INTENTS = ("out_of_scope", "greet", "goodbye", "thank", "affirm", "deny", "inform")


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=True
)
class ServiceItemLinker(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {
            "catalog_dir": None,  # default: knowledge/catalog of this project
            "top_k": 5,
            "min_score": 0.3,
            # Sentence model for semantic features and retrieval (knowledge.embedding);
            # None: BANSHI_EMBEDDING_MODEL, else "use". "none" turns semantics off.
            "model": None,
        }

    def __init__(
        self,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        linker: Optional[ItemLinker] = None,
    ) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._linker = linker

    @staticmethod
    def _catalog_dir(config: Dict[str, Any]) -> Path:
        return Path(config.get("catalog_dir") or DEFAULT_CATALOG_DIR)

    @staticmethod
    def _linker_config(config: Dict[str, Any]) -> LinkerConfig:
        return LinkerConfig(min_score=config["min_score"], top_k=config["top_k"])

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """Retrain when the catalog files or the sentence model change (not graph inputs)."""
        catalog = fingerprint_files(catalog_files(cls._catalog_dir(config)) + [NOT_COVERED_FILE])
        return f"{catalog}:{resolve_spec(config.get('model'))}"

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "ServiceItemLinker":
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        catalog = load_catalog(self._catalog_dir(self._config))
        examples = [(m.get(INTENT), m.get(TEXT)) for m in training_data.intent_examples if m.get(TEXT)]
        none_texts = [text for intent, text in examples if intent in NONE_INTENTS]
        question_texts = [text for intent, text in examples if intent not in NONE_INTENTS]
        encoder = load_encoder(resolve_spec(self._config.get("model")))
        uncovered = [q.text for q in load_not_covered()]
        self._linker = ItemLinker.train(
            catalog, none_texts, question_texts, self._linker_config(self._config), encoder, uncovered
        )
        with self._model_storage.write_to(self._resource) as directory:
            self._linker.save(Path(directory))
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "ServiceItemLinker":
        try:
            with model_storage.read_from(resource) as directory:
                linker = ItemLinker.load(Path(directory), cls._linker_config(config))
        except ValueError:
            logger.warning("nlu.item_linker.not_trained: no index in the model")
            linker = None
        if linker is not None:
            live.register(linker)
        return cls(config, model_storage, resource, linker)

    def process(self, messages: List[Message]) -> List[Message]:
        linker = live.current(self._linker)  # the catalog in effect (edits published since training)
        for message in messages:
            ranked, scope = linker.link_details(message.get(TEXT) or "") if linker else ([], {})
            named = set(scope.pop("named", []))
            items = [
                {
                    "id": item_id,
                    "name": linker.names.get(item_id, item_id),
                    "score": score,
                    "named": item_id in named,  # an alias is in the text, not only inferred
                }
                for item_id, score in ranked
            ]
            message.set(SERVICE_ITEMS, items, add_to_output=True)
            message.set(SERVICE_SCOPE, scope, add_to_output=True)
        return messages
