"""The Azure Functions app (Python v2 programming model): HTTP triggers that take tickets in and
read them back, and a timer that drains the helpdesk outbox. The handlers live in
`functions.py`."""

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
