"""Each on-call page has its own Idempotency-Key, kept by its retries: a receiver that dedupes on the key (as
docs/webhooks.md asks) shows every page once, and never drops one page as a repeat of another.

Lead pages share a dedup key per customer and day (PagerDuty keeps them as one incident), and a conversation's
pages share one per conversation; neither may be the key."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.client import Client

from baton.contract.messages import ConversationStart, ConversationState, PageRequest
from baton.settings import Settings
from baton.workflows.conversation import builders
from tests.receiver import Receipt, WebhookReceiver
from tests.test_paging import WEBHOOK_SECRET, pagers, resolve, run_pages, trigger

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def lead(conversation_id: str, count: int) -> PageRequest:
    state = ConversationState(start=ConversationStart(conversation_id=conversation_id, customer_id="cus-repeat"))
    return builders.lead_page(state, count, NOW)


async def test_every_page_has_its_own_key_and_a_retry_keeps_it(client: Client, settings: Settings) -> None:
    first_attempts: set[str] = set()

    def fail_first_attempt(receipt: Receipt) -> int | None:
        # Every page's first delivery fails (503), so each is retried once.
        if receipt.key in first_attempts:
            return None
        first_attempts.add(receipt.key)
        return 503

    leads = [lead("c-1", 2), lead("c-2", 3), lead("c-3", 4)]
    assert len({page.dedup_key for page in leads}) == 1  # one customer, one day
    conversation = trigger("c-9")
    pages = [*leads, conversation, resolve(conversation), conversation]

    async with WebhookReceiver(secret=WEBHOOK_SECRET, fail=fail_first_attempt) as webhook:
        paged = await run_pages(client, pagers(settings, webhook=webhook), *pages)
        again = await run_pages(client, pagers(settings, webhook=webhook), leads[0])  # the same page, later

    assert all(result.delivered for result in [*paged.results, *again.results])
    receipts = webhook.receipts
    assert len(receipts) == 2 * (len(pages) + 1)
    # Retries carry their page's key and body; pages never share one.
    for attempt, retry in zip(receipts[::2], receipts[1::2], strict=True):
        assert attempt.key == retry.key and attempt.body == retry.body
    keys = [receipt.key for receipt in receipts[::2]]
    assert len(set(keys)) == len(keys) == len(pages) + 1
    for key, page in zip(keys, [*pages, leads[0]], strict=True):
        assert key.startswith(f"{page.dedup_key}:{page.action}:")
    # A receiver that dedupes on the key shows every page.
    assert [PageRequest.model_validate(receipt.body) for receipt in webhook.shown.values()] == [*pages, leads[0]]
