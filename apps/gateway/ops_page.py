"""The HTML of the support leads' page (/ops) and its login form: plain server-rendered pages.

No script, no CDN, one inline style sheet: the page works offline and under a strict Content-Security-Policy.
Every value that reaches the HTML goes through `_e` (html.escape), including ids and labels: conversation ids,
tiers and incident descriptions come from outside, and a helpdesk or a customer can choose them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from html import escape

from baton.apps.gateway.ops_board import Board, Listed, MonthReport, QueueView, Waiting

REFRESH_SECONDS = 30

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #222;
       background: #f6f7f9; }
header { background: #1f3b5c; color: #fff; padding: 12px 24px; display: flex; justify-content: space-between;
         align-items: baseline; }
header h1 { font-size: 20px; margin: 0; }
header form { display: inline; }
header button { background: transparent; color: #fff; border: 1px solid #fff8; border-radius: 4px; cursor: pointer; }
main { padding: 8px 24px 32px; max-width: 1400px; }
section { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; padding: 12px 16px; margin: 16px 0; }
h2 { font-size: 17px; margin: 0 0 8px; }
h3 { font-size: 15px; margin: 14px 0 6px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #eceef1; vertical-align: top; }
th { font-weight: 600; color: #555; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: 13px; background: #f0f2f5; padding: 0 3px; border-radius: 3px; }
.muted { color: #666; }
.tag { display: inline-block; font-size: 12px; padding: 0 6px; margin: 1px 2px 1px 0; border-radius: 10px;
       background: #e8eef6; color: #1f3b5c; }
.urgency-immediate { background: #fde2e1; color: #8a1c14; font-weight: 600; }
.urgency-queued { background: #eef0f3; color: #333; }
tr.breached td { background: #fff4f3; }
.breach { color: #b3261e; font-weight: 600; }
.ok { color: #1e6b35; }
.banner { border-radius: 6px; padding: 10px 16px; margin: 16px 0; font-weight: 600; }
.surge-on { background: #fde2e1; color: #8a1c14; border: 1px solid #f3b3ae; }
.surge-off { background: #e7f4ea; color: #1e6b35; border: 1px solid #b8dfc2; }
.problems { background: #fff8e1; border: 1px solid #f0d68a; }
.figures td:first-child { width: 45%; }
img.chart { max-width: 100%; height: auto; border: 1px solid #eceef1; }
form.login { max-width: 360px; margin: 80px auto; background: #fff; padding: 24px; border: 1px solid #dde1e6;
             border-radius: 6px; }
form.login input { width: 100%; box-sizing: border-box; padding: 6px; margin: 6px 0 12px; font-size: 14px; }
form.login button { padding: 6px 16px; font-size: 14px; }
.error { color: #b3261e; }
"""


def _e(value: object) -> str:
    """Escaped for HTML text and double-quoted attributes."""
    return escape("" if value is None else str(value), quote=True)


def duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def _time(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _tags(values: Iterable[str], css: str = "tag") -> str:
    return "".join(f'<span class="{css}">{_e(v)}</span>' for v in values) or '<span class="muted">none</span>'


def _urgency(urgency: str | None) -> str:
    if not urgency:
        return '<span class="muted">?</span>'
    return f'<span class="tag urgency-{_e(urgency)}">{_e(urgency)}</span>'


def _customer(listed: Listed | None) -> str:
    if listed is None:
        return '<span class="muted">…</span>'
    parts = [p for p in (listed.tier, listed.segment) if p]
    return " / ".join(_e(p) for p in parts) or '<span class="muted">unknown</span>'


def _against_sla(row: Waiting) -> str:
    if row.sla_seconds is None:
        return '<span class="muted">no SLA</span>'
    if row.breached:
        return f'<span class="breach">breached by {duration(row.wait_seconds - row.sla_seconds)}</span>'
    return f'<span class="ok">{duration(row.sla_seconds - row.wait_seconds)} left</span>'


def _waiting_row(row: Waiting) -> str:
    flags = [f for f, on in (("raised", row.raised > 0), ("callback promised", row.callback)) if on]
    triggers = _tags(row.listed.triggers) if row.listed is not None else '<span class="muted">…</span>'
    return (
        f'<tr data-conversation="{_e(row.conversation_id)}" class="{"breached" if row.breached else "waiting"}">'
        f'<td class="num">{row.position}</td>'
        f'<td><code class="conversation">{_e(row.conversation_id)}</code></td>'
        f'<td class="urgency">{_urgency(row.urgency)}</td>'
        f'<td class="triggers">{triggers}</td>'
        f"<td>{_customer(row.listed)}</td>"
        f"<td>{_e(f'{row.waiting_since:%H:%M:%S} UTC')}</td>"
        f'<td class="num wait">{duration(row.wait_seconds)}</td>'
        f'<td class="num">{duration(row.sla_seconds) if row.sla_seconds is not None else ""}</td>'
        f'<td class="sla">{_against_sla(row)}</td>'
        f"<td>{_tags(flags) if flags else ''}</td>"
        "</tr>"
    )


def _queue(queue: QueueView) -> str:
    head = f'<h3 id="queue-{_e(queue.name)}">Queue <code>{_e(queue.name)}</code>: {len(queue.waiting)} waiting'
    if queue.waiting:
        head += f", longest {duration(queue.longest_wait_seconds)}"
    if queue.breached:
        head += f', <span class="breach">{queue.breached} past SLA</span>'
    head += "</h3>"
    if not queue.waiting:
        return head + '<p class="muted">Nobody is waiting.</p>'
    rows = "".join(_waiting_row(row) for row in queue.waiting)
    return (
        head + f'<table class="queue" data-queue="{_e(queue.name)}"><thead><tr>'
        '<th class="num">#</th><th>Conversation</th><th>Urgency</th><th>Triggers</th><th>Tier / segment</th>'
        '<th>Waiting since</th><th class="num">Wait</th><th class="num">SLA</th><th>Against SLA</th><th></th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def _with_agent(rows: list[Listed]) -> str:
    if not rows:
        return '<p class="muted">No conversation is with an agent.</p>'
    body = "".join(
        f'<tr data-conversation="{_e(row.conversation_id)}">'
        f'<td><code class="conversation">{_e(row.conversation_id)}</code></td>'
        f'<td class="agent">{_e(row.agent) or "<span class=muted>?</span>"}</td>'
        f"<td>{_e(row.queue)}</td><td>{_urgency(row.urgency)}</td>"
        f'<td class="triggers">{_tags(row.triggers)}</td><td>{_customer(row)}</td>'
        "</tr>"
        for row in rows
    )
    return (
        '<table id="with-agent"><thead><tr><th>Conversation</th><th>Agent</th><th>Queue</th><th>Urgency</th>'
        f"<th>Triggers</th><th>Tier / segment</th></tr></thead><tbody>{body}</tbody></table>"
    )


def _not_queued(board: Board) -> str:
    if not board.not_queued:
        return ""
    body = "".join(
        f'<tr data-conversation="{_e(row.conversation_id)}">'
        f'<td><code class="conversation">{_e(row.conversation_id)}</code></td>'
        f'<td>{_e(row.queue)}</td><td class="urgency">{_urgency(row.urgency)}</td>'
        f'<td class="triggers">{_tags(row.triggers)}</td><td>{_customer(row)}</td>'
        f"<td>{_e(_time(row.waiting_since)) or '<span class=muted>?</span>'}</td>"
        f'<td class="num wait">'
        f"{duration((board.now - row.waiting_since).total_seconds()) if row.waiting_since else ''}</td>"
        "</tr>"
        for row in board.not_queued
    )
    return (
        f'<h3 id="not-queued">Escalated, in no live queue: {len(board.not_queued)}</h3>'
        '<p class="muted">After hours (a callback is promised when the team opens; they join the queue then), '
        "or on an email or ticket channel (answered by reply within the reply time).</p>"
        '<table id="not-queued-table"><thead><tr><th>Conversation</th><th>Queue</th><th>Urgency</th>'
        '<th>Triggers</th><th>Tier / segment</th><th>Escalated at</th><th class="num">Since</th></tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _surge(board: Board) -> str:
    ops = board.operations
    if ops is None:
        return '<div class="banner problems" id="surge">Surge state unknown.</div>'
    if ops.surge:
        text = f"Surge mode is on ({_e(ops.reason or 'unknown reason')})."
    else:
        text = "No surge: conversations are handled normally."
    incident = ""
    if ops.incident is not None:
        since = f", since {_e(_time(ops.incident.started_at))}" if ops.incident.started_at else ""
        incident = (
            f'<p id="incident">Declared incident: <strong>{_e(ops.incident.description)}</strong> '
            f"(by {_e(ops.incident.declared_by)}{since}).</p>"
        )
    else:
        incident = '<p id="incident" class="muted">No incident is declared.</p>'
    return (
        f'<div class="banner {"surge-on" if ops.surge else "surge-off"}" id="surge">{text}</div>'
        f"<section><h2>Surge and incident</h2>{incident}<p>{ops.waiting} waiting for a person across queues; "
        f"{ops.escalations_last_hour} escalations in the last hour.</p></section>"
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _number(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:g}{unit}"


def _report(month: MonthReport, chart_url: str | None) -> str:
    if month.report is None:
        return f'<section id="report"><h2>This month</h2><p class="muted">{_e(month.problem)}</p></section>'
    report = month.report
    now, before = report.overall.current, report.overall.previous
    pickup_now = None if now.seconds_to_pickup_median is None else duration(now.seconds_to_pickup_median)
    pickup_before = None if before.seconds_to_pickup_median is None else duration(before.seconds_to_pickup_median)
    rows = [
        ("Conversations", now.conversations, before.conversations),
        ("Escalated conversations", now.escalated_conversations, before.escalated_conversations),
        ("Escalation rate", _pct(now.escalation_rate), _pct(before.escalation_rate)),
        (
            "Escalation accuracy (judged)",
            f"{_pct(now.escalation_accuracy)} of {now.judged}",
            f"{_pct(before.escalation_accuracy)} of {before.judged}",
        ),
        ("Median time to pickup", pickup_now or "n/a", pickup_before or "n/a"),
        ("Post-escalation CSAT", _number(now.post_escalation_csat), _number(before.post_escalation_csat)),
        ("Overall CSAT", _number(now.overall_csat), _number(before.overall_csat)),
        ("Abandonment", _pct(now.abandonment_rate), _pct(before.abandonment_rate)),
    ]
    body = "".join(
        f'<tr><td>{_e(name)}</td><td class="num">{_e(a)}</td><td class="num">{_e(b)}</td></tr>' for name, a, b in rows
    )
    flags = "".join(f"<li>{_e(flag.message)}</li>" for flag in report.flags)
    chart = (
        f'<p><img class="chart" src="{_e(chart_url)}" alt="Escalations by {_e(report.by)}, '
        f'{_e(report.month.title)} against {_e(report.previous_month.title)}"></p>'
        if chart_url
        else '<p class="muted">The chart needs matplotlib (the report extra).</p>'
    )
    return (
        f'<section id="report"><h2>This month: {_e(report.month.title)}</h2>'
        f'<table class="figures"><thead><tr><th></th><th class="num">{_e(report.month.short)}</th>'
        f'<th class="num">{_e(report.previous_month.short)}</th></tr></thead><tbody>{body}</tbody></table>'
        + (f"<h3>Flagged</h3><ul>{flags}</ul>" if flags else "")
        + chart
        + '<p class="muted">Counted as <code>baton report</code> counts: every conversation that started this '
        "month, open or closed.</p></section>"
    )


def _page(title: str, body: str, refresh: bool = False) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">{meta}'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )


def ops_page(board: Board, month: MonthReport, chart_url: str | None, logout: bool) -> str:
    """The whole page: surge, queues, conversations with an agent, the month's report."""
    waiting = sum(len(q.waiting) for q in board.queues)
    logout_form = (
        '<form method="post" action="/ops/logout"><button type="submit">Log out</button></form>' if logout else ""
    )
    problems = "".join(f"<li>{_e(p)}</li>" for p in [*board.problems])
    queues = "".join(_queue(q) for q in board.queues if q.waiting)
    empty = [q.name for q in board.queues if not q.waiting]
    if empty:  # one line for the quiet queues: the page is about who waits
        names = ", ".join(f"<code>{_e(name)}</code>" for name in empty)
        queues += f'<p class="muted" id="empty-queues">Nobody waiting in {names}.</p>'

    body = (
        f"<header><h1>Baton: support operations</h1><span>Updated {_e(_time(board.now))}; "
        f"refreshes every {REFRESH_SECONDS} s {logout_form}</span></header><main>"
        + (f'<section class="problems"><ul>{problems}</ul></section>' if problems else "")
        + _surge(board)
        + f'<section id="queues"><h2>Waiting for a person: {waiting}</h2>{queues}{_not_queued(board)}</section>'
        + f"<section><h2>With an agent: {len(board.with_agent)}</h2>{_with_agent(board.with_agent)}</section>"
        + _report(month, chart_url)
        + "</main>"
    )
    return _page("Baton operations", body, refresh=True)


def login_page(error: str | None = None) -> str:
    message = f'<p class="error" role="alert">{_e(error)}</p>' if error else ""
    body = (
        '<form class="login" method="post" action="/ops/login"><h2>Baton operations</h2>'
        f"{message}"
        '<label for="key">Gateway API key</label>'
        '<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>'
        '<button type="submit">Sign in</button></form>'
    )
    return _page("Sign in: Baton operations", body)
