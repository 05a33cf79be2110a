"""Sample customer texts shared by tests."""

# Questions on unrelated topics: together they trip no similarity-based trigger, only the count of
# unresolved messages, which makes thresholds easy to observe.
DISTINCT_QUESTIONS = [
    "How do I export reports?",
    "Where is the invoice for October?",
    "Can teammates share dashboards?",
    "Why is the mobile sync slow?",
    "Which browsers do you support?",
    "Does the API have rate limits?",
    "How long is data retained?",
    "Can I rename a workspace?",
    "Is single sign-on available?",
    "What file types can be uploaded?",
    "Where do I change the timezone?",
    "How are seats counted?",
    "Can I schedule a recurring export?",
    "Where are audit logs kept?",
]

# Ten more, each a different topic, for long conversations that must stay with the bot.
PRODUCT_QUESTIONS = [
    "Where is the CSV export?",
    "Can invoices go to accounting@?",
    "How are seats counted?",
    "Is single sign-on included?",
    "Do webhooks retry failures?",
    "How long is data retained?",
    "Which timezone do reports use?",
    "Are audit logs exportable?",
    "Does the API paginate results?",
    "Is there a mobile app?",
]
