"""`baton audit`: past conversations read for the scenario types where the bot falls short.

One concern a module: ``loading`` (the two JSONL shapes read and checked into ``PastConversation``),
``shortfalls`` (what went wrong in one conversation), ``reading`` (the classifier's view of each
conversation, scored in batches), ``clustering`` (embedding clusters where the classifier has no intent),
``scenarios`` (scenario types with their figures and examples), ``suggestions`` (a trigger and urgency per
scenario type, in the policy schema's terms), ``draft`` (the draft policy file), ``render`` (table and JSON),
``chart`` (the picture, matplotlib loaded only when asked for) and ``command`` (the CLI). See docs/audit.md.
"""
