"""The Temporal UI's list under the saved-view queries of docs/operators.md, in headless Chromium: the dev
server with its Web UI on a loopback port, a worker, two scripted conversations (scripts/temporal_ui_screenshots.py)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from baton.settings import Settings
from baton.worker.wiring import build_worker
from scripts.headless_chromium import blank_reason, headless_chromium, missing
from scripts.temporal_ui_screenshots import capture, dev_server_with_ui, list_url, play, saved_views
from tests.conftest import server_binary


@pytest.mark.skipif(missing() is not None, reason=f"headless Chromium: {missing()}")
async def test_saved_views_list_the_conversations_they_select(tmp_path: Path) -> None:
    async with dev_server_with_ui(server_binary("temporal")) as (environment, ui):
        settings = Settings(task_queue=f"test-ui-{uuid.uuid4().hex[:8]}")
        async with build_worker(environment.client, settings):
            played = await play(environment.client, settings.task_queue)
            async with headless_chromium(width=1600, height=800) as browser:
                # capture() loads each view until the list shows what the query selects, and fails when it
                # also shows the conversation the query leaves out.
                written = await capture(browser, ui, played, tmp_path)
                # The agent's view again: Baton's columns show the agent and the urgency in the row.
                view = next(v for v in saved_views(played.queue, played.at) if v.name == "with-agent")
                await browser.get(list_url(ui, view.query))
                source = await browser.wait_for(
                    lambda page: f"conversation-{played.taken}" in page and "agent-ada" in page,
                    timeout=60,
                    reload=list_url(ui, view.query),
                    reload_every=8.0,
                )
    assert [p.name for p in written] == [f"temporal-ui-{v.name}.png" for v in saved_views(played.queue, played.at)]
    for path in written:
        assert blank_reason(path.read_bytes()) is None
    assert f"conversation-{played.waiting}" not in source
    assert "BatonUrgency" in source and "immediate" in source
