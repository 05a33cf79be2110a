"""HTTP gateway for chat backends: one request per customer message, answered with a Decision.

Stateless: every request goes to the conversation's workflow, so gateways scale
horizontally and a retried request (same message_id) gets the same answer.

app: create_app, the API key, the routers; conversations, agents, operations, health: the
routers; errors: the one table from error types to HTTP answers; models: request and response
bodies; server: serve and main.
"""

from baton.apps.gateway.app import API_KEY_HEADER, DECISION_TIMEOUT_SECONDS, create_app
from baton.apps.gateway.server import main, serve, serve_app

__all__ = ["API_KEY_HEADER", "DECISION_TIMEOUT_SECONDS", "create_app", "main", "serve", "serve_app"]
