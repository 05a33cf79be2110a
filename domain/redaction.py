"""Personal data out of text: emails, phone numbers, card numbers, IBANs and US social security numbers, each
replaced by a typed placeholder (`[email]`, `[phone]`, `[card]`, `[iban]`, `[ssn]`).

Pure and deterministic: the same text always gives the same result, so a workflow may call it too. A match
is replaced only when it checks out, so that order numbers, ticket ids and amounts survive:

- a card number is 13 to 19 digits (spaces or dashes between groups allowed) that pass the Luhn check;
- an IBAN (upper case, whole or in groups) has a known country's length and passes the ISO 13616 mod-97 check;
- a phone number is a `+` and 8 to 15 digits, or a (0xx)/area-code number of 10 to 11 digits written with
  separators, the shapes people type; a bare run of digits is never a phone number (it is an order number);
- an SSN only in the written `123-45-6789` form, with the area, group and serial numbers the SSA never
  issues left alone. National ids of other countries have no pattern reliable enough to redact by.

Cards and IBANs go first, so that their digits are never taken for a phone number.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from baton.contract.messages import HandoffNote, HelpdeskTicket, PageRequest, TranscriptEntry

EMAIL = "[email]"
PHONE = "[phone]"
CARD = "[card]"
IBAN = "[iban]"
SSN = "[ssn]"
PLACEHOLDERS = (EMAIL, PHONE, CARD, IBAN, SSN)

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
# 13-19 digits, optionally in groups split by one space or dash; not inside a longer run of digits.
_CARD = re.compile(r"(?<![\d\w])\d(?:[ -]?\d){12,18}(?![\d\w])")
# Country code, check digits, then 11-30 letters and digits, optionally in groups of four split by spaces.
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])")
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
# International: + and 8-15 digits with optional separators. National: 10-11 digits with at least one
# separator or a parenthesised area code, e.g. (415) 555-0132, 020 7946 0958, 415-555-0132.
_PHONE_INTERNATIONAL = re.compile(r"(?<![\w+])\+\d(?:[ .-]?\(?\d\)?){7,14}(?![\w-]|[ .]\d)")
_PHONE_NATIONAL = re.compile(
    r"(?<![\w+-])(?<!\d[ .])(?:\(\d{2,5}\)[ .-]?|\d{2,5}[ .-])\d{3,4}[ .-]?\d{3,4}(?![\w-]|[ .]\d)"
)

# ISO 13616 lengths of the countries that issue IBANs (SWIFT's registry).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a string of digits (card numbers carry one in their last digit)."""
    if not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """ISO 13616: the country's length, and the number read with its first four characters moved to the end
    (letters as 10..35) is 1 modulo 97."""
    iban = candidate.replace(" ", "").upper()
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban[2:4].isdigit() or not iban.isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group())
    return CARD if 13 <= len(digits) <= 19 and luhn_valid(digits) else match.group()


def _iban(match: re.Match[str]) -> str:
    # The pattern may run on into a following word ("... 7654 32 THANKS"): try each shorter cut at a space.
    text = match.group()
    cuts = [len(text)] + [i for i in range(len(text) - 1, 0, -1) if text[i] == " "]
    for cut in cuts:
        if iban_valid(text[:cut]):
            return IBAN + text[cut:]
    return text


def _phone(match: re.Match[str]) -> str:
    digits = sum(char.isdigit() for char in match.group())
    return PHONE if 8 <= digits <= 15 else match.group()


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    replace: Callable[[re.Match[str]], str]


_RULES = (
    _Rule(_EMAIL, lambda _: EMAIL),
    _Rule(_IBAN, _iban),
    _Rule(_CARD, _card),
    _Rule(_SSN, lambda _: SSN),
    _Rule(_PHONE_INTERNATIONAL, _phone),
    _Rule(_PHONE_NATIONAL, _phone),
)


def redact(text: str) -> str:
    """`text` with each email, phone number, valid card number, valid IBAN and SSN replaced by its placeholder."""
    for rule in _RULES:
        text = rule.pattern.sub(rule.replace, text)
    return text


def redact_all(texts: list[str]) -> list[str]:
    return [redact(text) for text in texts]


# --- Whole messages out of the contract ---------------------------------------------------------------


def redact_transcript(entries: list[TranscriptEntry]) -> list[TranscriptEntry]:
    return [entry.model_copy(update={"text": redact(entry.text)}) for entry in entries]


def redact_note(note: HandoffNote) -> HandoffNote:
    """Every free-text field of a handoff note (the model may quote the customer)."""
    bug = note.bug_ticket
    if bug is not None:
        bug = bug.model_copy(
            update={
                "title": redact(bug.title),
                "steps": redact_all(bug.steps),
                "expected": redact(bug.expected),
                "actual": redact(bug.actual),
                "environment": redact(bug.environment),
            }
        )
    return note.model_copy(
        update={
            "summary": redact(note.summary),
            "customer_wants": redact(note.customer_wants),
            "already_tried": redact_all(note.already_tried),
            "sentiment_trajectory": redact(note.sentiment_trajectory),
            "account": redact(note.account),
            "triggers": redact_all(note.triggers),
            "recommended_actions": redact_all(note.recommended_actions),
            "suggested_first_reply": redact(note.suggested_first_reply),
            "bug_ticket": bug,
        }
    )


def redact_ticket(ticket: HelpdeskTicket) -> HelpdeskTicket:
    return ticket.model_copy(
        update={
            "subject": redact(ticket.subject),
            "note": redact_note(ticket.note),
            "transcript": redact_transcript(ticket.transcript),
        }
    )


def redact_page(page: PageRequest) -> PageRequest:
    """A page names a customer id, which may be an email address."""
    details = {name: redact(value) for name, value in page.details.items()}
    return page.model_copy(update={"summary": redact(page.summary), "details": details})
