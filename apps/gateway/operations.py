"""Operator endpoints: declare and end an incident, read the surge state and queue load."""

from __future__ import annotations

from fastapi import APIRouter
from temporalio.client import Client
from temporalio.service import RPCError

from baton.apps import client as baton_client
from baton.apps.gateway.auth import scoped
from baton.apps.gateway.errors import unavailable
from baton.apps.gateway.models import IncidentBody, error_responses
from baton.apps.gateway.updates import run_update
from baton.contract.messages import Incident, OperationsStatus
from baton.logging import get_logger
from baton.settings import Settings

log = get_logger("baton.gateway")


def router(client: Client, settings: Settings, decision_timeout: float) -> APIRouter:
    routes = APIRouter(dependencies=[scoped("operator")])

    @routes.post(
        "/incidents",
        response_model=OperationsStatus,
        responses=error_responses(503),
        summary="Declare an incident: a surge starts for live and new conversations",
    )
    async def declare(body: IncidentBody) -> OperationsStatus:
        incident = Incident.model_validate(body.model_dump())
        status_now = await run_update(
            baton_client.declare_incident(client, settings.task_queue, incident),
            conversation_id="operations",
            what="declare",
            timeout=decision_timeout,
        )
        log.warning("incident_declared", declared_by=incident.declared_by)
        return status_now

    @routes.delete(
        "/incidents/current",
        response_model=OperationsStatus,
        responses=error_responses(409, 503),
        summary="End the declared incident",
    )
    async def end_current() -> OperationsStatus:
        return await run_update(
            baton_client.end_incident(client, settings.task_queue),
            conversation_id="operations",
            what="end",
            timeout=decision_timeout,
        )

    @routes.get("/operations", response_model=OperationsStatus, summary="Surge state and queue load")
    async def operations() -> OperationsStatus:
        try:
            return await baton_client.operations_status(client, settings.task_queue)
        except RPCError as err:
            raise unavailable(err) from err

    return routes
