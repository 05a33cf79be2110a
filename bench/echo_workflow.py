"""The floor for the latency benchmark: a conversation workflow that does nothing.

Same shape as ConversationWorkflow as seen from a client: started by
update-with-start with the same input, the same `add_message` update taking a
MessageIn and returning a Decision, and the same `close` signal (the handler
names are ConversationWorkflow's, from baton.contract.ids). The update
handler answers at once with action "continue": no lock, no activities, no
search attributes, so what remains is the cost of Temporal itself.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from baton.contract import ids
    from baton.contract.messages import CloseRequest, ConversationInput, Decision, MessageIn


@workflow.defn(name="BenchEchoWorkflow")
class EchoWorkflow:
    def __init__(self) -> None:
        self._closing = False
        self._messages = 0

    @workflow.run
    async def run(self, input: ConversationInput) -> int:
        await workflow.wait_condition(lambda: self._closing)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._messages

    @workflow.update(name=ids.ADD_MESSAGE)
    def add_message(self, message: MessageIn) -> Decision:
        self._messages += 1
        return Decision(message_id=message.message_id, action="continue")

    @workflow.signal(name=ids.CLOSE)
    def close(self, request: CloseRequest) -> None:
        self._closing = True
