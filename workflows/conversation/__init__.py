"""The conversation workflow, one file per concern: the workflow and its handlers (workflow.py), the
handoff (handoff.py), the dead-zone ladder's planner (ladder.py), typed side effects (effects.py),
operator visibility (visibility.py) and builders of what is sent out (builders.py)."""

from baton.workflows.conversation.workflow import ConversationWorkflow

__all__ = ["ConversationWorkflow"]
