"""A customer talks to an agent: both directions through both simulators."""

from __future__ import annotations

from tests.e2e.conftest import World

USER = {"id": 5001, "first_name": "Ada", "last_name": "L", "username": "ada", "language_code": "en"}


async def test_start_message_and_agent_reply(world: World) -> None:
    world.telegram.inject_command(USER, "/start")
    await world.eventually(lambda: world.texts_to(5001), what="greeting")
    assert "Write your question" in world.texts_to(5001)[0]

    world.telegram.inject_text(USER, "Hello, I need help")
    token = "tg-5001"
    msgs = await world.eventually(lambda: world.udesk.messages_for(token), what="message in Udesk")
    assert [m.data["content"] for m in msgs] == ["Hello, I need help"]
    customer = world.udesk.customer_by_token(token)
    assert customer is not None and not customer.auto_created
    assert customer.fields["nick_name"] == "Ada L (@ada)"

    await world.udesk.agent_reply(token, "Hi Ada, how can I help?")
    await world.eventually(
        lambda: any("how can I help" in t for t in world.texts_to(5001)), what="agent reply"
    )
    texts = world.texts_to(5001)
    assert any("Tom joined" in t for t in texts)
    assert sum("how can I help" in t for t in texts) == 1
