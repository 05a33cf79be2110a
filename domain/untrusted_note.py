"""The LLM's handoff note is untrusted text: made safe to put in front of an agent and into a helpdesk ticket.

The model reads the customer's words, and a customer (or anything pasted into the conversation) can steer what
it writes. So Baton treats every free-text field the model wrote (summary, what the customer wants, what was
tried, the mood, recommended actions, the suggested first reply, the bug ticket draft) as data, never as markup
or as Baton's own word:

- markup is removed: HTML tags (a script or style element with its content), HTML comments, Markdown images;
  HTML entities are decoded first, so an encoded tag is removed too. The fields are plain text;
- links are removed: every URL (any scheme, `www.`, a bare domain, a Markdown link's target) becomes
  LINK_REMOVED, so an agent is never handed a link that only the model vouches for;
- characters that hide or reorder text (bidi overrides, zero-width characters, control characters) are dropped;
- a recommended action that would give money (a refund, credit, discount, waived fee, compensation, an amount)
  or grant access (admin rights, a password or 2FA reset, skipping verification, changing the account's
  owner) opens with MODEL_SUGGESTION: it is the model's suggestion, to be checked against policy, never an
  instruction from Baton. A suggested first reply that promises either opens with CHECK_REPLY.

Baton's deterministic fallback note is built from rules and is not passed through here. Pure: no I/O, no clock.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

from baton.contract.messages import BugTicketDraft, HandoffNote

LINK_REMOVED = "[link removed]"
MODEL_SUGGESTION = "[Model's suggestion, not a Baton instruction: check policy and get approval first] "
CHECK_REPLY = "[Check before sending: the model's draft promises money or access] "
ONLY_MARKUP = "[removed: the model wrote only markup here]"
MAX_FIELD_CHARS = 1500
MAX_LIST_ITEMS = 12

_FLAGS = re.IGNORECASE | re.DOTALL
_SCRIPT = re.compile(r"<\s*(script|style|iframe|object|embed|template)\b[^>]*>.*?(?:<\s*/\s*\1\s*>|$)", _FLAGS)
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
_TAG = re.compile(r"<\s*/?\s*[a-z!?][^<>]*>", re.IGNORECASE)
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\(\s*[^)\s]+[^)]*\)")
_SCHEME_URL = re.compile(r"\b(?:https?|ftps?|file|wss?)://[^\s<>\"'`]+", re.IGNORECASE)
_PSEUDO_URL = re.compile(r"\b(?:javascript|data|vbscript|mailto|tel|sms):[^\s<>\"'`]+", re.IGNORECASE)
_WWW = re.compile(r"\bwww\.[^\s<>\"'`]+", re.IGNORECASE)
# A bare domain with a common top-level domain (not after "@": an email address is not a link), with any path.
_TLDS = (
    "com|net|org|io|co|info|biz|app|dev|xyz|ru|cn|me|ly|link|site|online|top|click|shop|store|live|page|"
    "support|help|us|uk|de|fr|eu|ca|au|in|tk|ml|ga|cf|gq|ai|to|cc|ws|gl|gd|sh|ng|su|pw"
)
_BARE_DOMAIN = re.compile(
    rf"(?<![@\w.-])(?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?\.)+(?:{_TLDS})\b(?!\.\w)(?:[/?#][^\s<>\"'`]*)?",
    re.IGNORECASE,
)
_TRAILING = ".,;:!?)]}'\""
_SPACES = re.compile(r"[ \t]+")
_KEPT_CONTROLS = {"\n", "\t"}

_MONEY = re.compile(
    r"\b(refund\w*|reimburs\w*|credit(?!\s*card)(?:s|ed|ing)?|compensat\w*|discount\w*|waiv\w*|write[- ]?off|"
    r"chargeback|money[- ]back|coupon|voucher|gift[- ]?card|rebate|payout|pay\s+(?:out|back)|"
    r"free\s+(?:month|months|year|upgrade|plan|period|subscription)|prorat\w*|"
    r"cancel\w*\s+(?:the\s+)?(?:charge|invoice|fee))\b"
    r"|[$€£¥]\s?\d|\b\d[\d,.]*\s?(?:usd|eur|gbp|dollars?|euros?|pounds?)\b",
    re.IGNORECASE,
)
_ACCESS = re.compile(
    r"\b(?:grant|give|provide|restore|enable|add|assign|elevate|share)\b[^.;\n]{0,40}"
    r"\b(?:access|admin\w*|permissions?|roles?|rights|privileges?|owner\w*|api keys?|tokens?|credentials?)\b"
    r"|\b(?:reset|disable|remove|bypass|skip|turn\s+off|waive|override)\b[^.;\n]{0,40}"
    r"\b(?:passwords?|2fa|mfa|two[- ]factor|verification|verify\w*|authenticat\w*|identity|kyc|security)\b"
    r"|\b(?:change|update|transfer|replace)\b[^.;\n]{0,30}\b(?:owner\w*|e-?mail|login|phone number)\b"
    r"|\bunlock\b[^.;\n]{0,20}\baccounts?\b|\bwithout\s+(?:verif\w*|authenticat\w*|checking|approval)"
    r"|\b(?:admin|root|superuser)\s+(?:access|rights|role|privileges?)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Changes:
    """What cleaning one note changed, for the logs (counts only, never text)."""

    markup: int = 0
    links: int = 0
    hidden_characters: int = 0
    marked_actions: int = 0
    marked_reply: bool = False

    def __add__(self, other: Changes) -> Changes:
        return Changes(
            self.markup + other.markup,
            self.links + other.links,
            self.hidden_characters + other.hidden_characters,
            self.marked_actions + other.marked_actions,
            self.marked_reply or other.marked_reply,
        )

    @property
    def any(self) -> bool:
        return bool(self.markup or self.links or self.hidden_characters or self.marked_actions or self.marked_reply)


def plain_text(text: str, limit: int = MAX_FIELD_CHARS) -> tuple[str, Changes]:
    """`text` without markup, links or hidden characters, at most `limit` characters; and what was removed."""
    markup = links = 0
    # Entities first, so that an encoded tag ("&lt;script&gt;") is decoded and then removed like any other.
    text = html.unescape(text)
    for pattern, replacement in ((_SCRIPT, ""), (_COMMENT, ""), (_TAG, " ")):
        text, found = pattern.subn(replacement, text)
        markup += found

    def link_text(match: re.Match[str]) -> str:
        label = match.group(1).strip()
        return f"{label} {LINK_REMOVED}" if label else LINK_REMOVED

    for pattern in (_MD_IMAGE, _MD_LINK):
        text, found = pattern.subn(link_text, text)
        links += found
    for pattern in (_SCHEME_URL, _PSEUDO_URL, _WWW, _BARE_DOMAIN):
        text, found = pattern.subn(_remove_link, text)
        links += found
    kept = [c for c in text if c in _KEPT_CONTROLS or unicodedata.category(c) not in ("Cc", "Cf", "Co", "Cs")]
    hidden = len(text) - len(kept)
    text = "\n".join(_SPACES.sub(" ", line).strip() for line in "".join(kept).splitlines()).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text, Changes(markup=markup, links=links, hidden_characters=hidden)


def _plain_field(text: str) -> tuple[str, Changes]:
    """plain_text for a field that must say something: what was there, if it was all markup."""
    clean, changes = plain_text(text)
    return (clean or (ONLY_MARKUP if text.strip() else "")), changes


def _remove_link(match: re.Match[str]) -> str:
    # Sentence punctuation after a link stays in the sentence.
    url = match.group(0)
    kept = url.rstrip(_TRAILING)
    while kept.count("(") > kept.count(")") and len(kept) < len(url) and url[len(kept)] == ")":
        kept += ")"  # a closing parenthesis that belongs to the link (javascript:alert(1))
    return LINK_REMOVED + url[len(kept) :]


def promises_money_or_access(text: str) -> bool:
    """Whether the text would give money (refund, credit, discount, an amount...) or grant access."""
    return bool(_MONEY.search(text) or _ACCESS.search(text))


def _action(text: str) -> tuple[str, Changes]:
    clean, changes = plain_text(text)
    if clean.startswith(MODEL_SUGGESTION.strip()) or not promises_money_or_access(clean):
        return clean, changes
    return MODEL_SUGGESTION + clean, changes + Changes(marked_actions=1)


def _texts(items: list[str]) -> tuple[list[str], Changes]:
    cleaned, total = [], Changes()
    for item in items[:MAX_LIST_ITEMS]:
        text, changes = plain_text(item)
        total += changes
        if text:
            cleaned.append(text)
    return cleaned, total


def clean_note(note: HandoffNote) -> tuple[HandoffNote, Changes]:
    """The note with every free-text field made plain and safe; account and triggers are Baton's and kept."""
    summary, total = _plain_field(note.summary)
    wants, changes = _plain_field(note.customer_wants)
    total += changes
    tried, changes = _texts(note.already_tried)
    total += changes
    trajectory, changes = _plain_field(note.sentiment_trajectory)
    total += changes
    actions = []
    for item in note.recommended_actions[:MAX_LIST_ITEMS]:
        action, changes = _action(item)
        total += changes
        if action:
            actions.append(action)
    reply, changes = _plain_field(note.suggested_first_reply)
    total += changes
    if promises_money_or_access(reply) and not reply.startswith(CHECK_REPLY.strip()):
        reply = CHECK_REPLY + reply
        total += Changes(marked_reply=True)
    ticket = note.bug_ticket
    if ticket is not None:
        ticket, changes = _ticket(ticket)
        total += changes
    cleaned = note.model_copy(
        update={
            "summary": summary,
            "customer_wants": wants,
            "already_tried": tried,
            "sentiment_trajectory": trajectory,
            "recommended_actions": actions,
            "suggested_first_reply": reply,
            "bug_ticket": ticket,
        }
    )
    return cleaned, total


def _ticket(ticket: BugTicketDraft) -> tuple[BugTicketDraft, Changes]:
    title, total = plain_text(ticket.title, 200)
    steps, changes = _texts(ticket.steps)
    total += changes
    fields = {"title": title, "steps": steps}
    for name in ("expected", "actual", "environment"):
        fields[name], changes = plain_text(getattr(ticket, name))
        total += changes
    return ticket.model_copy(update=fields), total
