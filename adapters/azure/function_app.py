"""The Azure Functions app (Python v2 programming model): HTTP triggers that take tickets in and
read them back, a timer that drains the helpdesk outbox, and an Event Grid trigger that starts
retraining when a closed-ticket export lands. The handlers live in `functions.py`."""

from __future__ import annotations

import azure.functions as func

from adapters.azure import functions as handlers

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.function_name("submit_ticket")
@app.route(route="tickets", methods=["POST"])
def submit_ticket(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/tickets."""
    return handlers.submit(req, handlers.runtime())


@app.function_name("get_ticket")
@app.route(route="tickets/{ticket_id}", methods=["GET"])
def get_ticket(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/tickets/{ticket_id}."""
    return handlers.get_ticket(req, handlers.runtime())


# Every minute (NCRONTAB with seconds); a delivery's own backoff decides when it is due.
@app.function_name("drain_outbox")
@app.timer_trigger(arg_name="timer", schedule="0 */1 * * * *", use_monitor=True)
def drain_outbox(timer: func.TimerRequest) -> None:
    """Deliver what is due in the outbox; the next tick retries what failed."""
    handlers.drain(handlers.runtime())


# A closed-ticket export landed (Event Grid's BlobCreated, subscribed for the closed-tickets
# container): submit the Azure ML retraining job for it. No blob is read here, and no model.
@app.function_name("retrain_on_export")
@app.event_grid_trigger(arg_name="event")
def retrain_on_export(event: func.EventGridEvent) -> None:
    """Submit the retraining job for the export, once per blob version."""
    handlers.submit_retrain(event, handlers.retrain_submitter())
