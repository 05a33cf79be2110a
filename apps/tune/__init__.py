"""`baton policy tune`: propose per-trigger thresholds from labelled conversations, as a diff of the policy file.

The labelled conversations are a `baton export` file (or any replay JSONL whose customer messages carry the
classifier's recorded ``signals``). Each conversation is decided again by the policy engine itself
(``policies.engine.assess``, the function the conversation workflow calls on every customer message) on those
recorded scores, so a candidate threshold is judged exactly as the live workflow would judge it, in
milliseconds and without a server. The accuracy figures are apps/evaluation.py's, so a label from a missed
escalation counts an escalation after its message as a miss, as labelled replay does.

One concern a module: ``conversations`` (reading the labelled file), ``decide`` (the engine over one
conversation), ``search`` (candidates and the choice per trigger), ``policy_text`` (editing the YAML text and
the unified diff) and ``command`` (the CLI).
"""
