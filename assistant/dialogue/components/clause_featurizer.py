"""QuestionClauseFeaturizer: character n-grams of the clause that asks the question.

People tell their story first and ask last: "…证件前两天丢了，重新弄一张要多久". The
kind of question (materials, time, place, fees) sits in the last clause, and in a
bag of words over the whole message the story drowns it. This featurizer adds a
sentence-level sparse feature of the character 1–3-grams of the last clause that asks
something (or of the last clause), so the intent classifier sees the question apart
from the story and from a courtesy after it ("…去哪里办呀，麻烦您了").
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional

import scipy.sparse as sp
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.sparse_featurizer.sparse_featurizer import SparseFeaturizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from sklearn.feature_extraction.text import CountVectorizer

VOCABULARY_FILE = "clause_vocabulary.json"
CLAUSE_SPLIT = re.compile(r"[，,。.！!？?；;：:、\s]+")
# A clause that asks something ("补一个要去哪里补啊"), as opposed to a courtesy
# after the question ("麻烦你了", "谢谢").
QUESTION_RE = re.compile(
    r"[吗嘛呢么]|怎么|怎样|咋|如何|哪|多少|多久|多长|几天|几个|啥|什么|能不能|可不可以|是否|是不是|要不要|有没有|行不行|中不中|[能可]以?.{0,6}不$"
)


def last_clause(text: str) -> str:
    """The last clause that asks something; else the last non-empty clause."""
    parts = [p for p in CLAUSE_SPLIT.split(text.strip()) if p]
    if not parts:
        return text
    asking = [p for p in parts if QUESTION_RE.search(p)]
    return asking[-1] if asking else parts[-1]


def _vectorizer(vocabulary: Optional[Dict[str, int]] = None) -> CountVectorizer:
    return CountVectorizer(
        analyzer="char_wb", ngram_range=(1, 3), lowercase=True, vocabulary=vocabulary
    )


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=True
)
class QuestionClauseFeaturizer(SparseFeaturizer, GraphComponent):
    @classmethod
    def validate_config(cls, config: Dict[str, Any]) -> None:
        """Nothing to check beyond the defaults."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {**SparseFeaturizer.get_default_config(), "min_df": 1}

    def __init__(
        self,
        config: Dict[str, Any],
        name: str,
        model_storage: ModelStorage,
        resource: Resource,
        vocabulary: Optional[Dict[str, int]] = None,
    ) -> None:
        super().__init__(name, config)
        self._model_storage = model_storage
        self._resource = resource
        self._vectorizer = _vectorizer(vocabulary) if vocabulary else None

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "QuestionClauseFeaturizer":
        return cls(config, execution_context.node_name, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "QuestionClauseFeaturizer":
        try:
            with model_storage.read_from(resource) as directory:
                vocabulary = json.loads((Path(directory) / VOCABULARY_FILE).read_text(encoding="utf-8"))
        except (ValueError, OSError):
            vocabulary = None
        return cls(config, execution_context.node_name, model_storage, resource, vocabulary)

    def train(self, training_data: TrainingData) -> Resource:
        clauses = [last_clause(m.get(TEXT)) for m in training_data.training_examples if m.get(TEXT)]
        vectorizer = CountVectorizer(
            analyzer="char_wb", ngram_range=(1, 3), lowercase=True, min_df=self._config["min_df"]
        )
        vectorizer.fit(clauses or [" "])
        vocabulary = {k: int(v) for k, v in vectorizer.vocabulary_.items()}
        self._vectorizer = _vectorizer(vocabulary)
        with self._model_storage.write_to(self._resource) as directory:
            (Path(directory) / VOCABULARY_FILE).write_text(
                json.dumps(vocabulary, ensure_ascii=False), encoding="utf-8"
            )
        return self._resource

    def _featurize(self, messages: List[Message]) -> None:
        if self._vectorizer is None:
            return
        todo = [m for m in messages if isinstance(m.get(TEXT), str) and m.get(TEXT)]
        if not todo:
            return
        matrix = self._vectorizer.transform([last_clause(m.get(TEXT)) for m in todo]).tocsr()
        for row, message in enumerate(todo):
            message.add_features(
                Features(sp.coo_matrix(matrix[row]), FEATURE_TYPE_SENTENCE, TEXT, self._identifier)
            )

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self._featurize(training_data.training_examples)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        self._featurize(messages)
        return messages
