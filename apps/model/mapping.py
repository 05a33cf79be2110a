"""The explicit tables from each source's labels to Baton's intents and topic.

Every label of every source is a key of a table here, also those that give no Baton intent (mapped to
``()`` and a topic), so no row is silently dropped; `tests/test_model_data.py` checks it against the data.
A target is ``(intents, topic)``. Besides the label tables:

- HINT3 labels are coarse bot routes (``CHAT_WITH_AN_AGENT`` holds "No", "I do not need chat agent" and
  "My balance is wrong"), so `HINT3_TEXT_OVERRIDES` relabels those rows one by one, keyed on
  (bot, exact text); each override must match a row.
- NLU++ is multi-label by "modules": a row's intents are the union of its modules' intents and its topic
  the first of `TOPIC_PRIORITY` among its modules' topics, except that ``thank`` gives ``resolved`` only
  when the row has no request module (`NLUPP_REQUEST_MODULES`): "thanks, when will I get the money back?"
  is not resolved.
- GoEmotions rows get no intent or topic, only a frustration score from their emotions
  (`goemotions_frustration`).
"""

from __future__ import annotations

from collections.abc import Iterable

from baton.apps.model.labels import (
    ACCOUNT_ACCESS,
    BILLING,
    BILLING_DISPUTE,
    CANCELLATION,
    CONTACT_REQUEST,
    HUMAN_REQUEST,
    NOT_HELPING,
    OTHER,
    RESOLVED,
    SHIPPING_ORDERS,
    TECHNICAL,
    TOPIC_PRIORITY,
)

Target = tuple[tuple[str, ...], str]


def _t(topic: str, *intents: str) -> Target:
    return (intents, topic)


# --- HINT3 v2 (hellohaptik/HINT3, dataset/v2/train), one table per bot -----------------------------------

HINT3: dict[str, dict[str, Target]] = {
    "sofmattress": {
        "100_NIGHT_TRIAL_OFFER": _t(OTHER),
        "ABOUT_SOF_MATTRESS": _t(OTHER),
        "CANCEL_ORDER": _t(SHIPPING_ORDERS, CANCELLATION),
        "CHECK_PINCODE": _t(SHIPPING_ORDERS),
        "COD": _t(BILLING),
        "COMPARISON": _t(OTHER),
        "DELAY_IN_DELIVERY": _t(SHIPPING_ORDERS),
        "DISTRIBUTORS": _t(OTHER),
        "EMI": _t(BILLING),
        "ERGO_FEATURES": _t(OTHER),
        "LEAD_GEN": _t(OTHER, CONTACT_REQUEST),  # "Please call me", "Schedule a callback"; see overrides
        "MATTRESS_COST": _t(OTHER),  # product price, not a charge
        "OFFERS": _t(OTHER),
        "ORDER_STATUS": _t(SHIPPING_ORDERS),
        "ORTHO_FEATURES": _t(OTHER),
        "PILLOWS": _t(OTHER),
        "PRODUCT_VARIANTS": _t(OTHER),
        "RETURN_EXCHANGE": _t(SHIPPING_ORDERS),  # returns and exchanges; the refund demands are overridden
        "SIZE_CUSTOMIZATION": _t(OTHER),
        "WARRANTY": _t(OTHER),
        "WHAT_SIZE_TO_ORDER": _t(OTHER),
    },
    "curekart": {
        "CALL_CENTER": _t(OTHER, CONTACT_REQUEST),  # "Customer care number", "where do I call you"
        "CANCEL_ORDER": _t(SHIPPING_ORDERS, CANCELLATION),
        "CHAT_WITH_AGENT": _t(OTHER, HUMAN_REQUEST),  # also complaints; see overrides
        "CHECK_PINCODE": _t(SHIPPING_ORDERS),
        "CONSULT_START": _t(OTHER),
        "DELAY_IN_PARCEL": _t(SHIPPING_ORDERS),
        "EXPIRY_DATE": _t(OTHER),
        "FRANCHISE": _t(OTHER),
        "IMMUNITY": _t(OTHER),
        "INTERNATIONAL_SHIPPING": _t(SHIPPING_ORDERS),
        "MODES_OF_PAYMENTS": _t(BILLING),
        "MODIFY_ADDRESS": _t(SHIPPING_ORDERS),
        "ORDER_QUERY": _t(SHIPPING_ORDERS),
        "ORDER_STATUS": _t(SHIPPING_ORDERS),
        "ORDER_TAKING": _t(SHIPPING_ORDERS),
        "ORIGINAL_PRODUCT": _t(OTHER),
        "PAYMENT_AND_BILL": _t(BILLING),
        "PORTAL_ISSUE": _t(TECHNICAL),
        "RECOMMEND_PRODUCT": _t(OTHER),
        "REFER_EARN": _t(OTHER),
        "REFUNDS_RETURNS_REPLACEMENTS": _t(SHIPPING_ORDERS),  # the refund demands are overridden
        "RESUME_DELIVERY": _t(SHIPPING_ORDERS),
        "SIDE_EFFECT": _t(OTHER),
        "SIGN_UP": _t(ACCOUNT_ACCESS),
        "START_OVER": _t(OTHER),
        "STORE_INFORMATION": _t(OTHER),
        "USER_GOAL_FORM": _t(OTHER),
        "WORK_FROM_HOME": _t(OTHER),  # "is your office open during the lockdown?"
    },
    "powerplay11": {
        "ACCOUNT_BALANCE_DEDUCTED": _t(BILLING),
        "ACCOUNT_NOT_VERIFIED": _t(ACCOUNT_ACCESS),
        "ACCOUNT_RESET": _t(ACCOUNT_ACCESS),
        "APPRECIATION": _t(OTHER, RESOLVED),  # "Great service", "Good job"
        "BANK_VERIFICATION_DETAILS": _t(BILLING),
        "CANNOT_SEE_JOINED_CONTESTS": _t(TECHNICAL),
        "CAPABILITIES": _t(OTHER),
        "CASH_BONUS": _t(BILLING),
        "CASH_BONUS_EXPIRY": _t(BILLING),
        "CHANGE_BANK_ACCOUNT": _t(BILLING),
        "CHANGE_MOBILE_NUMBER": _t(ACCOUNT_ACCESS),
        "CHANGE_PROFILE_TEAM_DETAILS": _t(ACCOUNT_ACCESS),
        "CHAT_WITH_AN_AGENT": _t(OTHER, HUMAN_REQUEST),  # also "No", balance complaints; see overrides
        "CHECK_DEPOSIT_STATUS": _t(BILLING),
        "CHECK_WALLET_BALANCE": _t(BILLING),
        "CONTACT_NUMBER": _t(OTHER, CONTACT_REQUEST),
        "CRITICISM": _t(OTHER, NOT_HELPING),  # "You are dumb", "Bad Service", "Waste app"
        "DEDUCTED_AMOUNT_NOT_RECEIVED": _t(BILLING, BILLING_DISPUTE),  # debited but not credited
        "DELETE_PAN_CARD": _t(ACCOUNT_ACCESS),  # remove/change the tax id on the profile, not an erasure request
        "DOWNLOAD_POWERPLAY11": _t(TECHNICAL),
        "FAIRPLAY_VIOLATIONS": _t(OTHER),
        "FAKE_TEAMS": _t(OTHER),
        "FEEDBACK": _t(OTHER),
        "GREETINGS_DAY": _t(OTHER),
        "HOW_POINTS_CALCULATED": _t(OTHER),
        "HOW_TO_PLAY": _t(OTHER),
        "INSTANT_WITHDRAWAL": _t(BILLING),
        "JOIN_CONTEST": _t(OTHER),
        "LESS_WINNINGS_AMOUNT": _t(BILLING),
        "MATCH_ABANDONED": _t(OTHER),
        "NEW_TEAM_PATTERN": _t(OTHER),
        "NO_EMAIL_CONFIRMATION": _t(ACCOUNT_ACCESS),
        "OFFERS_AND_REFERRALS": _t(OTHER),
        "PAN_VERIFICATION_FAILED": _t(ACCOUNT_ACCESS),
        "POINTS_NOT_UPDATED": _t(TECHNICAL),
        "PRESENCE": _t(OTHER),
        "REFUND_OF_ADDED_CASH": _t(BILLING, BILLING_DISPUTE),
        "REFUND_OF_WRONG_AMOUNT": _t(BILLING, BILLING_DISPUTE),
        "SIGNUP_BONUS": _t(BILLING),
        "TAXES_ON_WINNINGS": _t(BILLING),
        "TEAM_DEADLINE": _t(OTHER),
        "THANKS": _t(OTHER, RESOLVED),
        "TYPES_BONUS": _t(BILLING),
        "TYPES_CONTESTS": _t(OTHER),
        "UNUTILIZED_MONEY": _t(BILLING),
        "UPDATE_APP": _t(TECHNICAL),
        "VERIFY_EMAIL": _t(ACCOUNT_ACCESS),
        "VERIFY_MOBILE": _t(ACCOUNT_ACCESS),
        "VERIFY_PAN": _t(ACCOUNT_ACCESS),
        "WHAT_IF_THERES_A_TIE": _t(OTHER),
        "WHY_VERIFY": _t(ACCOUNT_ACCESS),
        "WINNINGS": _t(BILLING),
        "WITHDRAWAL_INTRO": _t(BILLING),
        "WITHDRAWAL_STATUS": _t(BILLING),
        "WITHDRAWAL_TIME": _t(BILLING),
        "WITHDRAW_CASH_BONUS": _t(BILLING),
        "WRONG_SCORES": _t(OTHER),
    },
}


def _same(bot: str, texts: Iterable[str], target: Target) -> dict[tuple[str, str], Target]:
    return {(bot, text): target for text in texts}


# Rows whose HINT3 label says something else than the text (keyed on the stripped text).
HINT3_TEXT_OVERRIDES: dict[tuple[str, str], Target] = {
    # LEAD_GEN mixes callbacks (the label's target), live-agent requests and purchase intent.
    **_same(
        "sofmattress",
        ["Want to talk to an live agent", "Do you have Live agent", "Connect to an agent"],
        _t(OTHER, HUMAN_REQUEST),
    ),
    **_same(
        "sofmattress",
        [
            "Interested in buying",
            "I want to buy this",
            "How to buy?",
            "How to order",
            "I want to order",
            "I want to buy",
        ],
        _t(SHIPPING_ORDERS),
    ),
    # RETURN_EXCHANGE: the refund demands.
    **_same("sofmattress", ["Need my money back", "I want refund", "Refund"], _t(BILLING, BILLING_DISPUTE)),
    # CHAT_WITH_AGENT: insults and complaints about the service, not a request for a person.
    **_same(
        "curekart",
        [
            "You guys are fraud",
            "pathetic service",
            "You are useless",
            "Poor service",
            "poor customer support",
            "Waste of my time",
            "Bad Service",
        ],
        _t(OTHER, NOT_HELPING),
    ),
    ("curekart", "Your delivery service is always slow I am done with CureKart"): _t(SHIPPING_ORDERS, NOT_HELPING),
    # REFUNDS_RETURNS_REPLACEMENTS: the refund demands and missing refunds.
    **_same(
        "curekart",
        [
            "I havent received my refund it has been many days since the return",
            "Where is my refund?",
            "Refund not received",
            "I want my payment for refund back, when I will get it?",
            "I want my money back",
            "I want refund as soon as in my account",
            "please refund my amount",
            "Refund money",
            "i want to refund my product",
            "refund wrong item received",
            "Refund",
            "My Refund",
        ],
        _t(BILLING, BILLING_DISPUTE),
    ),
    # CHAT_WITH_AN_AGENT: answers to "did that help?", a refusal of an agent, and wallet complaints.
    **_same(
        "powerplay11",
        ["Nope", "No, I couldn't find", "No", "Couldn't", "Didn't", "I do not need chat agent"],
        _t(OTHER),
    ),
    **_same(
        "powerplay11",
        [
            "My referral amount is incorrect",
            "I can't see my withdrawal",
            "My deposit is incorrect",
            "My deposit is wrong",
            "I can't see my deposit",
            "I can't see my transaction",
            "My balance is wrong",
            "My bonus is wrong",
            "My deposit is not visible",
            "My deposit is not there",
            "My sign up bonus is incorrect",
            "My bonus is incorrect",
            "My balance is incorrect",
            "I am still waiting for my deposit money to get reflected in my wallet",
            "It seems the wallet still not updated",
            "My wallet showing wrong balance",
            "I referred to one of my friend he got all necessary step done"
            " but then also it not showing in the referral",
            "Why it is showing wrong balance",
            "Did not receive my bonus",
            "Did not receive my sign up amount",
            "Didn't receive money with my referrals",
        ],
        _t(BILLING),
    ),
    **_same("powerplay11", ["My transaction is incorrect", "My transaction is wrong"], _t(BILLING, BILLING_DISPUTE)),
    ("powerplay11", "I ask a number of question to the bot but the query is not answered can you connect to Agent"): (
        _t(OTHER, HUMAN_REQUEST, NOT_HELPING)
    ),
}


def hint3_target(bot: str, label: str, text: str) -> Target:
    """Baton's target for a HINT3 row: its override if it has one, else its label's."""
    key = (bot, text.strip())
    return HINT3_TEXT_OVERRIDES[key] if key in HINT3_TEXT_OVERRIDES else HINT3[bot][label]


# --- NLU++ hotels (PolyAI-LDN/task-specific-datasets, nlupp/data/hotels): one entry per intent module -------

NLUPP_HOTELS: dict[str, Target] = {
    # generic modules (ontology domain "general")
    "affirm": _t(OTHER),
    "deny": _t(OTHER),
    "dont_know": _t(OTHER),
    "acknowledge": _t(OTHER),
    "greet": _t(OTHER),
    "end_call": _t(OTHER),  # "bye", "that is all": a close, but not "it worked"
    "handoff": _t(OTHER, HUMAN_REQUEST),  # "get me your manager", "transfer me to room service"
    "thank": _t(OTHER, RESOLVED),  # only without a request module, see nlupp_target
    "repeat": _t(OTHER),
    "cancel_close_leave_freeze": _t(OTHER, CANCELLATION),  # mostly cancelling bookings
    "change": _t(OTHER),
    "make_open_apply_setup_get_activate": _t(OTHER),
    "request_info": _t(OTHER),
    "how": _t(OTHER),
    "why": _t(OTHER),
    "when": _t(OTHER),
    "how_much": _t(OTHER),  # prices and quantities of hotel services
    "how_long": _t(OTHER),
    "wrong_notworking_notshowing": _t(TECHNICAL),  # "wifi is broken", but also "the room is dirty"
    "lost_stolen": _t(OTHER),  # lost property
    "more_higher_after": _t(OTHER),
    "less_lower_before": _t(OTHER),
    "new": _t(OTHER),
    "existing": _t(OTHER),
    "limits": _t(OTHER),
    # shared by banking and hotels
    "refund": _t(BILLING, BILLING_DISPUTE),  # "I cancelled 5 days ago and still no refund"
    # hotels modules
    "check_in": _t(OTHER),
    "check_out": _t(OTHER),
    "restaurant": _t(OTHER),
    "swimming_pool": _t(OTHER),
    "parking": _t(OTHER),
    "pets": _t(OTHER),
    "accesibility": _t(OTHER),  # sic, as in the ontology
    "booking": _t(OTHER),  # a reservation, not a shipped order
    "wifi": _t(TECHNICAL),
    "gym": _t(OTHER),
    "spa": _t(OTHER),
    "room_ammenities": _t(OTHER),  # sic
    "housekeeping": _t(OTHER),
    "room_service": _t(OTHER),
}

# Modules that ask for something: with one of them a ``thank`` is politeness, not "resolved".
NLUPP_REQUEST_MODULES: frozenset[str] = frozenset(
    {
        "handoff",
        "repeat",
        "cancel_close_leave_freeze",
        "change",
        "make_open_apply_setup_get_activate",
        "request_info",
        "how",
        "why",
        "when",
        "how_much",
        "how_long",
        "wrong_notworking_notshowing",
        "lost_stolen",
        "refund",
    }
)


def nlupp_target(modules: Iterable[str]) -> Target:
    """Baton's target for an NLU++ row with these intent modules (none: no intent, topic other)."""
    modules = list(modules)
    intents: list[str] = []
    topics = {OTHER}
    asks = any(m in NLUPP_REQUEST_MODULES for m in modules)
    for module in modules:
        module_intents, topic = NLUPP_HOTELS[module]
        topics.add(topic)
        for intent in module_intents:
            if intent == RESOLVED and asks:
                continue
            if intent not in intents:
                intents.append(intent)
    return tuple(intents), next(t for t in TOPIC_PRIORITY if t in topics)


# --- Banking77 (PolyAI-LDN/task-specific-datasets, banking_data/train.csv) ---------------------------------

BANKING77: dict[str, Target] = {
    "Refund_not_showing_up": _t(BILLING, BILLING_DISPUTE),  # "I'm still waiting on a refund"
    "activate_my_card": _t(BILLING),
    "age_limit": _t(OTHER),
    "apple_pay_or_google_pay": _t(BILLING),
    "atm_support": _t(BILLING),
    "automatic_top_up": _t(BILLING),
    "balance_not_updated_after_bank_transfer": _t(BILLING),
    "balance_not_updated_after_cheque_or_cash_deposit": _t(BILLING),
    "beneficiary_not_allowed": _t(BILLING),
    "cancel_transfer": _t(BILLING),  # reversing a payment, not ending a service
    "card_about_to_expire": _t(BILLING),
    "card_acceptance": _t(BILLING),
    "card_arrival": _t(SHIPPING_ORDERS),
    "card_delivery_estimate": _t(SHIPPING_ORDERS),
    "card_linking": _t(BILLING),
    "card_not_working": _t(TECHNICAL),
    "card_payment_fee_charged": _t(BILLING, BILLING_DISPUTE),  # "I received a fee I should not have"
    "card_payment_not_recognised": _t(BILLING, BILLING_DISPUTE),
    "card_payment_wrong_exchange_rate": _t(BILLING, BILLING_DISPUTE),
    "card_swallowed": _t(BILLING),
    "cash_withdrawal_charge": _t(BILLING, BILLING_DISPUTE),  # "why was I charged extra at the ATM?"
    "cash_withdrawal_not_recognised": _t(BILLING, BILLING_DISPUTE),
    "change_pin": _t(ACCOUNT_ACCESS),
    "compromised_card": _t(BILLING, BILLING_DISPUTE),  # "charges I don't recognize, someone uses my card"
    "contactless_not_working": _t(TECHNICAL),
    "country_support": _t(OTHER),
    "declined_card_payment": _t(BILLING),
    "declined_cash_withdrawal": _t(BILLING),
    "declined_transfer": _t(BILLING),
    "direct_debit_payment_not_recognised": _t(BILLING, BILLING_DISPUTE),
    "disposable_card_limits": _t(BILLING),
    "edit_personal_details": _t(ACCOUNT_ACCESS),
    "exchange_charge": _t(BILLING),  # a question about fees before paying them
    "exchange_rate": _t(BILLING),
    "exchange_via_app": _t(BILLING),
    "extra_charge_on_statement": _t(BILLING, BILLING_DISPUTE),
    "failed_transfer": _t(BILLING),
    "fiat_currency_support": _t(BILLING),
    "get_disposable_virtual_card": _t(BILLING),
    "get_physical_card": _t(ACCOUNT_ACCESS),  # about the card's PIN
    "getting_spare_card": _t(SHIPPING_ORDERS),  # ordering additional cards
    "getting_virtual_card": _t(BILLING),
    "lost_or_stolen_card": _t(BILLING),
    "lost_or_stolen_phone": _t(ACCOUNT_ACCESS),  # securing the app
    "order_physical_card": _t(SHIPPING_ORDERS),
    "passcode_forgotten": _t(ACCOUNT_ACCESS),
    "pending_card_payment": _t(BILLING),
    "pending_cash_withdrawal": _t(BILLING),
    "pending_top_up": _t(BILLING),
    "pending_transfer": _t(BILLING),
    "pin_blocked": _t(ACCOUNT_ACCESS),
    "receiving_money": _t(BILLING),
    "request_refund": _t(BILLING, BILLING_DISPUTE),
    "reverted_card_payment?": _t(BILLING),  # sic, with the question mark
    "supported_cards_and_currencies": _t(BILLING),
    "terminate_account": _t(BILLING, CANCELLATION),
    "top_up_by_bank_transfer_charge": _t(BILLING),  # "is there a fee for ...?"
    "top_up_by_card_charge": _t(BILLING),
    "top_up_by_cash_or_cheque": _t(BILLING),
    "top_up_failed": _t(BILLING),
    "top_up_limits": _t(BILLING),
    "top_up_reverted": _t(BILLING),
    "topping_up_by_card": _t(BILLING),
    "transaction_charged_twice": _t(BILLING, BILLING_DISPUTE),
    "transfer_fee_charged": _t(BILLING, BILLING_DISPUTE),  # "I shouldn't be charged any fee"
    "transfer_into_account": _t(BILLING),
    "transfer_not_received_by_recipient": _t(BILLING),
    "transfer_timing": _t(BILLING),
    "unable_to_verify_identity": _t(ACCOUNT_ACCESS),
    "verify_my_identity": _t(ACCOUNT_ACCESS),
    "verify_source_of_funds": _t(ACCOUNT_ACCESS),
    "verify_top_up": _t(ACCOUNT_ACCESS),  # the verification code of a top-up card
    "virtual_card_not_working": _t(TECHNICAL),
    "visa_or_mastercard": _t(BILLING),
    "why_verify_identity": _t(ACCOUNT_ACCESS),
    "wrong_amount_of_cash_received": _t(BILLING, BILLING_DISPUTE),
    "wrong_exchange_rate_for_cash_withdrawal": _t(BILLING, BILLING_DISPUTE),
}


# --- CLINC150 (clinc/oos-eval, data/data_full.json "train" and "oos_train"), by the repository's domains ----

CLINC150: dict[str, Target] = {
    # banking
    "freeze_account": _t(BILLING),
    "routing": _t(BILLING),
    "pin_change": _t(ACCOUNT_ACCESS),
    "bill_due": _t(BILLING),
    "pay_bill": _t(BILLING),
    "account_blocked": _t(ACCOUNT_ACCESS),  # "why am I locked out of my bank account"
    "interest_rate": _t(BILLING),
    "min_payment": _t(BILLING),
    "bill_balance": _t(BILLING),
    "transfer": _t(BILLING),
    "order_checks": _t(BILLING),
    "balance": _t(BILLING),
    "spending_history": _t(BILLING),
    "transactions": _t(BILLING),
    "report_fraud": _t(BILLING, BILLING_DISPUTE),  # "this charge on my account is fraud"
    # credit_cards
    "replacement_card_duration": _t(SHIPPING_ORDERS),  # how long until the new card arrives
    "expiration_date": _t(BILLING),
    "damaged_card": _t(BILLING),
    "improve_credit_score": _t(BILLING),
    "report_lost_card": _t(BILLING),
    "card_declined": _t(BILLING),
    "credit_limit_change": _t(BILLING),
    "apr": _t(BILLING),
    "redeem_rewards": _t(BILLING),
    "credit_limit": _t(BILLING),
    "rewards_balance": _t(BILLING),
    "application_status": _t(BILLING),
    "credit_score": _t(BILLING),
    "new_card": _t(BILLING),
    "international_fees": _t(BILLING),
    # kitchen_and_dining
    "food_last": _t(OTHER),
    "confirm_reservation": _t(OTHER),
    "how_busy": _t(OTHER),
    "ingredients_list": _t(OTHER),
    "calories": _t(OTHER),
    "nutrition_info": _t(OTHER),
    "recipe": _t(OTHER),
    "restaurant_reviews": _t(OTHER),
    "restaurant_reservation": _t(OTHER),
    "meal_suggestion": _t(OTHER),
    "restaurant_suggestion": _t(OTHER),
    "cancel_reservation": _t(OTHER, CANCELLATION),  # as NLU++ booking cancellations
    "ingredient_substitution": _t(OTHER),
    "cook_time": _t(OTHER),
    "accept_reservations": _t(OTHER),
    # home
    "what_song": _t(OTHER),
    "play_music": _t(OTHER),
    "todo_list_update": _t(OTHER),
    "reminder": _t(OTHER),
    "reminder_update": _t(OTHER),
    "calendar_update": _t(OTHER),
    "order_status": _t(SHIPPING_ORDERS),  # "track my package"
    "update_playlist": _t(OTHER),
    "shopping_list": _t(OTHER),
    "calendar": _t(OTHER),
    "next_song": _t(OTHER),
    "order": _t(SHIPPING_ORDERS),  # "order me more plastic bags"
    "todo_list": _t(OTHER),
    "shopping_list_update": _t(OTHER),
    "smart_home": _t(OTHER),
    # auto_and_commute
    "current_location": _t(OTHER),
    "oil_change_when": _t(OTHER),
    "oil_change_how": _t(OTHER),
    "uber": _t(OTHER),
    "traffic": _t(OTHER),
    "tire_pressure": _t(OTHER),
    "schedule_maintenance": _t(OTHER),
    "gas": _t(OTHER),
    "mpg": _t(OTHER),
    "distance": _t(OTHER),
    "directions": _t(OTHER),
    "last_maintenance": _t(OTHER),
    "gas_type": _t(OTHER),
    "tire_change": _t(OTHER),
    "jump_start": _t(OTHER),
    # travel
    "plug_type": _t(OTHER),
    "travel_notification": _t(OTHER),
    "translate": _t(OTHER),
    "flight_status": _t(OTHER),
    "international_visa": _t(OTHER),
    "timezone": _t(OTHER),
    "exchange_rate": _t(OTHER),  # market rates while travelling, not a bank's charge
    "travel_suggestion": _t(OTHER),
    "travel_alert": _t(OTHER),
    "vaccines": _t(OTHER),
    "lost_luggage": _t(OTHER),
    "book_flight": _t(OTHER),
    "book_hotel": _t(OTHER),
    "carry_on": _t(OTHER),
    "car_rental": _t(OTHER),
    # utility
    "weather": _t(OTHER),
    "alarm": _t(OTHER),
    "date": _t(OTHER),
    "find_phone": _t(OTHER),
    "share_location": _t(OTHER),
    "timer": _t(OTHER),
    "make_call": _t(OTHER),  # "call mom": the user's own contacts, not the company
    "calculator": _t(OTHER),
    "definition": _t(OTHER),
    "measurement_conversion": _t(OTHER),
    "flip_coin": _t(OTHER),
    "spelling": _t(OTHER),
    "time": _t(OTHER),
    "roll_dice": _t(OTHER),
    "text": _t(OTHER),
    # work
    "pto_request_status": _t(OTHER),
    "next_holiday": _t(OTHER),
    "insurance_change": _t(OTHER),
    "insurance": _t(OTHER),
    "meeting_schedule": _t(OTHER),
    "payday": _t(OTHER),
    "taxes": _t(OTHER),
    "income": _t(OTHER),
    "rollover_401k": _t(OTHER),
    "pto_balance": _t(OTHER),
    "pto_request": _t(OTHER),
    "w2": _t(OTHER),
    "schedule_meeting": _t(OTHER),
    "direct_deposit": _t(OTHER),
    "pto_used": _t(OTHER),
    # small_talk
    "who_made_you": _t(OTHER),
    "meaning_of_life": _t(OTHER),
    "who_do_you_work_for": _t(OTHER),
    "do_you_have_pets": _t(OTHER),
    "what_are_your_hobbies": _t(OTHER),
    "fun_fact": _t(OTHER),
    "what_is_your_name": _t(OTHER),
    "where_are_you_from": _t(OTHER),
    "goodbye": _t(OTHER),
    "thank_you": _t(OTHER, RESOLVED),  # "you have been a big help, thank you"
    "greeting": _t(OTHER),
    "tell_joke": _t(OTHER),
    "are_you_a_bot": _t(OTHER),  # "am I talking to a real person?": a question, not a request for one
    "how_old_are_you": _t(OTHER),
    "what_can_i_ask_you": _t(OTHER),
    # meta
    "change_speed": _t(OTHER),
    "user_name": _t(OTHER),
    "whisper_mode": _t(OTHER),
    "yes": _t(OTHER),
    "change_volume": _t(OTHER),
    "no": _t(OTHER),
    "change_language": _t(OTHER),
    "repeat": _t(OTHER),
    "change_accent": _t(OTHER),
    "cancel": _t(OTHER),  # "never mind, cancel that": stops the assistant, not a subscription
    "sync_device": _t(TECHNICAL),
    "change_user_name": _t(OTHER),
    "change_ai_name": _t(OTHER),
    "reset_settings": _t(TECHNICAL),
    "maybe": _t(OTHER),
    # out of scope: negatives
    "oos": _t(OTHER),
}


# --- GoEmotions (monologg/GoEmotions-pytorch, data/original/train.tsv): frustration only ------------------

# The rule: a row's frustration is the largest of its emotions' values here.
#   1.0   anger, annoyance, disgust
#   0.75  disapproval
#   0.5   disappointment, sadness, nervousness, fear, grief
#   0.25  confusion, embarrassment, remorse
#   0.0   neutral and every other emotion (the positive ones, curiosity, desire, realization, surprise)
GOEMOTIONS_FRUSTRATION: dict[str, float] = {
    "admiration": 0.0,
    "amusement": 0.0,
    "anger": 1.0,
    "annoyance": 1.0,
    "approval": 0.0,
    "caring": 0.0,
    "confusion": 0.25,
    "curiosity": 0.0,
    "desire": 0.0,
    "disappointment": 0.5,
    "disapproval": 0.75,
    "disgust": 1.0,
    "embarrassment": 0.25,
    "excitement": 0.0,
    "fear": 0.5,
    "gratitude": 0.0,
    "grief": 0.5,
    "joy": 0.0,
    "love": 0.0,
    "nervousness": 0.5,
    "optimism": 0.0,
    "pride": 0.0,
    "realization": 0.0,
    "relief": 0.0,
    "remorse": 0.25,
    "sadness": 0.5,
    "surprise": 0.0,
    "neutral": 0.0,
}


def goemotions_frustration(emotions: Iterable[str]) -> float:
    """The largest frustration value among a row's emotions (a row has at least one)."""
    return max(GOEMOTIONS_FRUSTRATION[e] for e in emotions)
