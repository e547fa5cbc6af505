"""The priority rules for admins: the rules in force, a new version, the history and a restore,
and the page that edits them (`static/rules.html`).

The rules are kept beside the models of the local registry (`<registry>/rules/`: versioned
files and an append-only `audit.jsonl`, see `core.rules_source`), so an edit survives a restart
and a promotion. Every worker process reloads them within a second of a change on disk.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at runtime.

import logging
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI
from fastapi.responses import JSONResponse, Response

from adapters.local.auth import Principal
from adapters.local.pages import NotAllowed, page
from core.enricher import Enricher
from core.errors import FieldProblem, InvalidRules, error_body
from core.rules_source import (
    MODEL_RULES,
    RULES_DIR,
    ReloadingRules,
    RulesDirectory,
    RulesInForce,
)
from core.settings import Settings

_log = logging.getLogger(__name__)

_ADMIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not signed in and no API key."},
    403: {"description": "Signed in as an agent who is not an admin."},
}


def _invalid(exc: InvalidRules) -> JSONResponse:
    field = f"rules.{exc.rule}" if exc.rule else "rules"
    return JSONResponse(
        error_body("invalid_rules", str(exc), [FieldProblem(field, str(exc))]), status_code=422
    )


def build_rules_admin(
    enricher: Enricher,
    settings: Settings,
    *,
    reader: Any,
    source: ReloadingRules | None = None,
    admins: Sequence[str] | None = None,
) -> APIRouter:
    """The rules endpoints and page, for admins: the API key and the agents the settings name
    (`admins`). ``reader`` is the app's dependency naming the agent or machine client of a
    request; ``source`` defaults to the rules kept in the settings' model registry, and is
    given to ``enricher`` (when its options apply rules) so that every ticket takes the rules
    in force."""
    rules = (
        source
        if source is not None
        else ReloadingRules(
            RulesDirectory(settings.model_registry_dir / RULES_DIR), lambda: enricher.artifact
        )
    )
    if enricher.options.rules:
        enricher.rules_source = rules
    allowed = frozenset(settings.admins if admins is None else admins)
    Reader = Annotated[Principal, Depends(reader)]

    async def admin(who: Reader) -> Principal:
        if who.kind == "api" or who.name in allowed:
            return who
        raise NotAllowed(403, "not_admin", f"{who.name} is not an admin; an admin edits the rules")

    Admin = Annotated[Principal, Depends(admin)]
    router = APIRouter(tags=["rules"])

    def answer(state: RulesInForce) -> dict[str, Any]:
        refused = rules.refused
        return {
            "version": state.version,
            "source": state.source,
            "reason": state.reason,
            "file": rules.directory.path(state.version).name
            if state.version != MODEL_RULES
            else None,
            "applied": enricher.options.rules,
            "model": {"name": enricher.model_name, "version": state.model_version},
            "labels": [
                str(label) for label in enricher.artifact.model["targets"]["priority"]["labels"]
            ],
            "refused": refused.as_dict() if refused is not None else None,
            "rules": state.document(),
        }

    @router.get("/agent/rules", include_in_schema=False)
    def rules_page() -> Response:
        return page("rules.html")

    @router.get("/rules", summary="The priority rules in force", responses=_ADMIN_RESPONSES)
    def rules_in_force(who: Admin) -> dict[str, Any]:
        """The rules document in force, its version (0: the served model's own rules.json),
        where it comes from and why, and the last file on disk refused as invalid."""
        return answer(rules.refresh())

    @router.put(
        "/rules",
        summary="Put a new version of the priority rules in force",
        responses={
            **_ADMIN_RESPONSES,
            422: {"description": "The rules do not validate; the message names the rule."},
        },
    )
    def put_rules(who: Admin, document: Annotated[dict[str, Any], Body()]) -> Response:
        """Validate a whole rules document for the served model and write it as a new version
        (never over an earlier one), in force from this request on; an invalid one changes
        nothing."""
        try:
            state = rules.save(document, by=who.name, by_kind=who.kind)
        except InvalidRules as exc:
            _log.info("rules refused", extra={"by": who.name, "rule": exc.rule, "error": str(exc)})
            return _invalid(exc)
        _log.info("rules changed", extra={"by": who.name, "version": state.version})
        return JSONResponse(answer(state))

    @router.get(
        "/rules/history",
        summary="Every version of the rules, newest first",
        responses=_ADMIN_RESPONSES,
    )
    def rules_history(who: Admin) -> dict[str, Any]:
        """Each version with who wrote it, when, what changed (rules added, removed, changed)
        and the version in force before; version 0 is the served model's own rules."""
        state = rules.refresh()
        return {"in_force": state.version, "versions": rules.history()}

    @router.post(
        "/rules/restore/{version}",
        summary="Put an earlier version of the rules back in force",
        responses={
            **_ADMIN_RESPONSES,
            404: {"description": "No such version."},
            422: {"description": "That version does not validate for the served model."},
        },
    )
    def restore_rules(who: Admin, version: int) -> Response:
        """Write the earlier version again as the newest one (the history keeps both); 0 is
        the served model's own rules."""
        if version != MODEL_RULES and version not in rules.directory.versions():
            raise NotAllowed(404, "rules_version_not_found", f"no rules version {version}")
        try:
            state = rules.restore(version, by=who.name, by_kind=who.kind)
        except InvalidRules as exc:
            return _invalid(exc)
        _log.info(
            "rules restored", extra={"by": who.name, "from": version, "version": state.version}
        )
        return JSONResponse(answer(state))

    return router


def add_rules_admin(app: FastAPI, enricher: Enricher, settings: Settings, *, reader: Any) -> None:
    """Add the rules endpoints and page to the local service (see `build_rules_admin`)."""
    app.include_router(build_rules_admin(enricher, settings, reader=reader))
