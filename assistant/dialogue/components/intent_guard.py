"""IntentGuard: keep the intent consistent with what the message plainly is.

A statistical classifier trained on short messages is easily pulled off course by one
word in a long description ("…退休了，工作人员说…" → ``request_human``). After the
classifier and the item linker, this component applies the few rules a clerk would:

* a question is never ``goodbye``, ``thank``, ``feedback``, ``inform``, ``greet``,
  ``affirm`` or ``deny`` when it is about a service (a linked item or a service verb);
* ``check_progress`` needs words about an application already submitted (进度, 审核, 办好了没…);
* ``request_human`` needs words asking for a person (人工, 真人, 客服…);
* ``complain`` needs words of a complaint when the message asks about a service
  (a misfiled complaint opens a ticket);
* a rating of the service or of an answer ("点个赞", "你这回答不对") is ``feedback``;
* a question about an application already handed in ("上个月交了申请，办到哪了")
  is ``check_progress``;
* ``out_of_scope`` is not kept for a question that the item linker ties to an item.

The replacement is the best-ranked allowed intent of the classifier's own ranking, so
the narrow question type (materials, fees, where…) survives. The cue lists live in
``intent_guard.yml`` beside this file.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

logger = logging.getLogger(__name__)

CUES_FILE = Path(__file__).with_name("intent_guard.yml")
INTENT_RANKING = "intent_ranking"
SERVICE_ITEMS = "service_items"
ASK_SERVICE = "ask_service"
QUESTION_INTENTS = (
    "ask_service", "ask_materials", "ask_conditions", "ask_process",
    "ask_fee", "ask_time_limit", "ask_location",
)
NOT_A_QUESTION = ("goodbye", "thank", "feedback", "inform", "greet", "affirm", "deny")


class Cues:
    """Compiled cue patterns from ``intent_guard.yml``."""

    def __init__(self, data: Dict[str, Any]):
        def pattern(key: str) -> re.Pattern:
            return re.compile("|".join(f"(?:{p})" for p in data[key]))

        self.question = pattern("question")
        self.service = pattern("service")
        self.progress = pattern("progress")
        self.human = pattern("human")
        self.complaint = pattern("complaint")
        self.progress_strong = pattern("progress_strong")
        self.submitted = pattern("submitted")
        self.progress_done = pattern("progress_done")
        self.rating = pattern("rating")
        self.item_min_score = float(data["item_min_score"])
        self.long_message = int(data["long_message_chars"])
        self.short_progress_chars = int(data["short_progress_chars"])

    @classmethod
    def load(cls, path: Path = CUES_FILE) -> "Cues":
        return cls(yaml.safe_load(path.read_text(encoding="utf-8")))


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False
)
class IntentGuard(GraphComponent):
    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "IntentGuard":
        return cls(Cues.load())

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        return CUES_FILE.read_text(encoding="utf-8")

    def __init__(self, cues: Cues) -> None:
        self.cues = cues

    def corrected(self, message: Message) -> Optional[str]:
        """The intent the message should have, or None to keep the classifier's."""
        intent = (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
        text = message.get(TEXT) or ""
        if not intent or not text or text.startswith("/"):
            return None
        cues = self.cues
        items = message.get(SERVICE_ITEMS) or []
        has_item = bool(items) and float(items[0].get("score", 0)) >= cues.item_min_score
        is_question = bool(cues.question.search(text))
        about_service = has_item or bool(cues.service.search(text))
        if intent in QUESTION_INTENTS and (cues.progress_strong.search(text) or cues.progress_done.search(text)) \
                and cues.submitted.search(text):
            return "check_progress"
        if intent in QUESTION_INTENTS and len(text) <= cues.short_progress_chars and cues.progress_done.search(text):
            return "check_progress"  # "居住证办好没"
        if cues.rating.search(text) and intent in QUESTION_INTENTS + ("feedback",):
            return "feedback" if intent != "feedback" else None
        if intent == "complain" and about_service and is_question and not cues.complaint.search(text):
            return self._best(message, allowed=QUESTION_INTENTS)
        if intent in NOT_A_QUESTION and about_service and (
            is_question or (len(text) >= cues.long_message and intent != "feedback")
        ):
            return self._best(message, allowed=QUESTION_INTENTS)
        if intent == "check_progress" and about_service and not (
            cues.progress.search(text) or cues.progress_strong.search(text) or cues.progress_done.search(text)
        ):
            return self._best(message, allowed=QUESTION_INTENTS + ("complain",))
        if intent == "request_human" and not cues.human.search(text):
            best = self._best(message, exclude=("request_human",))
            if best in NOT_A_QUESTION and about_service:
                return self._best(message, allowed=QUESTION_INTENTS)
            return best
        if intent == "out_of_scope" and has_item and is_question:
            return self._best(message, allowed=QUESTION_INTENTS)
        return None

    @staticmethod
    def _best(message: Message, allowed: Optional[tuple] = None, exclude: tuple = ()) -> str:
        """The best-ranked intent among ``allowed`` (any, if None) and not in ``exclude``."""
        for entry in message.get(INTENT_RANKING) or []:
            name = entry.get(INTENT_NAME_KEY)
            if name not in exclude and (allowed is None or name in allowed):
                return name
        return ASK_SERVICE

    def _service_question_confidence(self, message: Message) -> None:
        """A question about a linked item is understood even when the classifier hesitates
        between kinds of question (materials or conditions): its confidence is the chance
        that it is a service question at all, so the fallback does not ask to rephrase."""
        intent = message.get(INTENT) or {}
        items = message.get(SERVICE_ITEMS) or []
        if intent.get(INTENT_NAME_KEY) not in QUESTION_INTENTS or not items:
            return
        if float(items[0].get("score", 0)) < self.cues.item_min_score:
            return
        total = sum(
            float(e.get(PREDICTED_CONFIDENCE_KEY) or 0.0)
            for e in message.get(INTENT_RANKING) or []
            if e.get(INTENT_NAME_KEY) in QUESTION_INTENTS
        )
        if total > float(intent.get(PREDICTED_CONFIDENCE_KEY) or 0.0):
            message.set(INTENT, {**intent, PREDICTED_CONFIDENCE_KEY: total}, add_to_output=True)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            replacement = self.corrected(message)
            if replacement is None:
                self._service_question_confidence(message)
                continue
            old = message.get(INTENT) or {}
            ranking = message.get(INTENT_RANKING) or []
            confidence = next(
                (e.get(PREDICTED_CONFIDENCE_KEY, 0.0) for e in ranking if e.get(INTENT_NAME_KEY) == replacement),
                0.0,
            )
            # The guard is sure of what the message is not: keep the old confidence so the
            # fallback threshold judges the message, not the re-ranking.
            confidence = max(float(confidence), float(old.get(PREDICTED_CONFIDENCE_KEY) or 0.0))
            message.set(
                INTENT, {INTENT_NAME_KEY: replacement, PREDICTED_CONFIDENCE_KEY: confidence}, add_to_output=True
            )
            self._service_question_confidence(message)
            logger.debug("nlu.intent_guard.replaced %s -> %s", old.get(INTENT_NAME_KEY), replacement)
        return messages
