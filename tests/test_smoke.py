from tests.conftest import SECRETARY, BotHarness, replies


async def test_start_in_private_offers_languages(harness: BotHarness) -> None:
    calls = await harness.command("/start", SECRETARY)
    texts = replies(calls)
    assert len(texts) == 1
    print(texts[0])
    print(calls[-1].buttons())
