"""The call mode's ranking over a whole call: a bundle asked for as a whole against its
member items, and phrases read together with the caller's previous one.

The calls here were written for these tests (not taken from the bench's calls). The
model tests run the real catalog and the trained model through the same
``CallSession`` the desk's WebSocket uses.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from assistant.services.callmode.config import TUNABLES
from assistant.services.callmode.session import CallSession, Ranking

KNOWN = ["newborn_hukou", "resident_medical_insurance", "social_security_card", "bundle_newborn", "passport"]
BUNDLES = {"bundle_newborn": ("newborn_hukou", "resident_medical_insurance", "social_security_card")}


def parse(item_scores, intent="ask_service"):
    """Parse data as the runtime returns it (intent, intent_ranking, service_items)."""
    return {
        "intent": {"name": intent, "confidence": 0.9},
        "intent_ranking": [{"name": intent, "confidence": 0.9}],
        "service_items": [{"id": i, "name": i, "score": s} for i, s in item_scores],
    }


def test_a_bundle_asked_for_clearly_gathers_its_members_evidence():
    ranking = Ranking(bundles=BUNDLES)
    ranking.observe(parse([("newborn_hukou", 0.9)]), "宝宝要上户口", KNOWN, 0)
    assert ranking.leader == "newborn_hukou"
    # The bundle's own evidence alone (0.7) is not ahead of the member's (0.77) by the
    # switch margin; with the member's evidence it is: the member is part of the bundle.
    ranking.observe(parse([("bundle_newborn", 0.7)]), "这几样一起办", KNOWN, 1)
    assert ranking.evidence["bundle_newborn"] < ranking.evidence["newborn_hukou"]
    assert ranking.standing()["bundle_newborn"] == pytest.approx(
        ranking.evidence["bundle_newborn"] + ranking.evidence["newborn_hukou"]
    )
    assert ranking.leader == "bundle_newborn"
    # Naming one member again does not take the first place back from the bundle.
    ranking.observe(parse([("newborn_hukou", 0.9)]), "户口要带什么", KNOWN, 2)
    assert ranking.leader == "bundle_newborn"
    assert [c.item_id for c in ranking.ranked(3)][:2] == ["bundle_newborn", "newborn_hukou"]


def test_a_weak_bundle_guess_leaves_the_named_member_first():
    ranking = Ranking(bundles=BUNDLES)
    ranking.observe(parse([("newborn_hukou", 0.9)]), "宝宝要上户口", KNOWN, 0)
    weak = TUNABLES.ranking.bundle_min_evidence - 0.1
    ranking.observe(parse([("newborn_hukou", 0.5), ("bundle_newborn", weak)]), "户口和别的", KNOWN, 1)
    assert ranking.standing()["bundle_newborn"] == ranking.evidence["bundle_newborn"]
    assert ranking.leader == "newborn_hukou"


def test_members_of_another_bundle_or_no_bundle_count_only_for_themselves():
    ranking = Ranking(bundles=BUNDLES)
    ranking.observe(parse([("passport", 0.9)]), "办护照", KNOWN, 0)
    ranking.observe(parse([("bundle_newborn", 0.6)]), "一起办", KNOWN, 1)
    assert ranking.standing()["bundle_newborn"] == ranking.evidence["bundle_newborn"]
    assert ranking.leader == "passport"


def test_the_context_parse_gives_the_evidence_and_the_phrase_the_question():
    ranking = Ranking(bundles=BUNDLES)
    ranking.observe(parse([("passport", 0.9)]), "我要办护照", KNOWN, 0)
    phrase = parse([], "ask_fee")
    assert ranking.about_need(phrase, "要多少钱", KNOWN)
    ranking.observe(phrase, "要多少钱", KNOWN, 1, context=(parse([("passport", 0.95)]), "我要办护照 要多少钱"))
    assert ranking.evidence["passport"] > 0.9 and ranking.support["passport"] == [0, 1]
    assert ranking.question_type == "fee"
    assert not ranking.about_need(parse([], "inform"), "我姓王", KNOWN)


# ---------------------------------------------------------------- with the model
@pytest.fixture(scope="module")
def runtime(settings, trained_model, tmp_path_factory):
    from assistant.dialogue.runtime import AssistantRuntime

    loaded = AssistantRuntime(
        settings.copy(update={"model_path": trained_model, "data_dir": tmp_path_factory.mktemp("ranking"), "tracker_store": "memory"})
    )
    loaded.load()
    return loaded


def follow(runtime, catalog, phrases, tunables=None):
    """The first suggestion's item after each caller phrase, and the session."""
    session = CallSession(catalog)
    if tunables is not None:
        session.ranking.tunables = tunables

    async def run():
        tops = []
        for text in phrases:
            update = await session.hear(runtime, "caller", text)
            tops.append(update.suggestions[0]["item_id"] if update.suggestions else None)
        return tops

    return asyncio.run(run()), session


@pytest.mark.model
def test_a_member_then_a_joint_request_ends_on_the_bundle(runtime, catalog):
    assert "retirement_pension" in catalog.records["bundle_retirement"].members
    tops, session = follow(
        runtime, catalog, ["我今年满六十了 厂里让我办退休", "退休金 公积金 医保这些都得弄", "能不能在一个地方一起办了"]
    )
    assert tops == ["retirement_pension", "bundle_retirement", "bundle_retirement"]
    assert session.draft().item_id == "bundle_retirement"
    # Without the members' evidence the bundle comes a phrase later.
    no_bundles = dataclasses.replace(TUNABLES.ranking, bundle_min_evidence=float("inf"))
    assert follow(runtime, catalog, ["我今年满六十了 厂里让我办退休", "退休金 公积金 医保这些都得弄"], no_bundles)[0] == [
        "retirement_pension",
        "retirement_pension",
    ]


@pytest.mark.model
def test_several_members_asked_together_end_on_the_bundle(runtime, catalog):
    tops, session = follow(
        runtime, catalog, ["我儿媳妇前几天生了个闺女", "宝宝的户口 医保 社保卡都还没弄", "这几样能不能一次办好"]
    )
    assert tops[0] == "newborn_hukou" and tops[-1] == "bundle_newborn"
    assert session.draft().item_id == "bundle_newborn"


@pytest.mark.parametrize(
    "phrases, item",
    [
        (["我儿媳妇前几天生了个闺女", "想先给宝宝上个户口", "要带哪些材料"], "newborn_hukou"),
        (["我今年满六十了 厂里让我办退休", "退休以后养老金每个月什么时候发"], "retirement_pension"),
    ],
)
@pytest.mark.model
def test_a_member_asked_about_alone_stays_first(runtime, catalog, phrases, item):
    tops, session = follow(runtime, catalog, phrases)
    assert set(tops) == {item} and session.draft().item_id == item


@pytest.mark.model
def test_a_fragment_is_read_with_the_previous_phrase(runtime, catalog):
    phrases = ["我在老家那边交了八年社保", "现在在这边上班了 能转过来吗"]
    _, session = follow(runtime, catalog, phrases)
    assert session.ranking.leader == "pension_transfer"
    assert set(session.ranking.evidence) == {"pension_transfer"}
    # Alone, "能转过来吗" also reads as moving a household registration.
    alone = dataclasses.replace(TUNABLES.ranking, context_phrases=1)
    _, session = follow(runtime, catalog, phrases, alone)
    assert set(session.ranking.evidence) - {"pension_transfer"}


@pytest.mark.model
def test_a_name_or_a_number_adds_no_evidence(runtime, catalog):
    tops, session = follow(runtime, catalog, ["我护照下个月到期了", "要多久能办好"])
    before = dict(session.ranking.evidence)

    async def more():
        await session.hear(runtime, "caller", "我姓张 张伟 弓长张")
        # A number said aloud is no service name (一八九一 sounds one syllable off 异地就医).
        await session.hear(runtime, "caller", "电话一八九 一零七二 四四五三")

    asyncio.run(more())
    assert tops == ["passport", "passport"]
    decay = TUNABLES.ranking.decay
    assert session.ranking.evidence == pytest.approx({k: v * decay**2 for k, v in before.items()})
    draft = session.draft()
    assert draft.item_id == "passport" and draft.caller_name == "张伟" and draft.phone == "18910724453"
