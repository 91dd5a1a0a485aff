"""The catalogue's error tree. Each error carries a machine ``code`` and an HTTP
``status``; ``gateway.errors.problem_body`` turns any of them into RFC 9457
problem details, and the CLI prints them as one line.

    CatalogueError                 code, status
    ├── InvalidInput               bad resource, application or file (400); carries problems
    ├── UnknownObject              no such resource, application or grant (404)
    ├── NotAllowed                 the actor may not do this (403)
    ├── WorkflowConflict           the transition does not fit the current state (409)
    └── ShapeError                 a response cannot be shaped: fail closed (502)
"""

from __future__ import annotations

from collections.abc import Sequence

from texts import joined, where


class CatalogueError(Exception):
    code = "catalogue"
    status = 500

    def __init__(self, description: str, problems: Sequence[str] | None = None) -> None:
        self.problems = list(problems or [])
        self.description = description
        super().__init__(
            where(description, joined(self.problems)) if self.problems else description
        )


class InvalidInput(CatalogueError):
    code = "validation"
    status = 400


class UnknownObject(CatalogueError):
    code = "not_found"
    status = 404


class NotAllowed(CatalogueError):
    code = "forbidden"
    status = 403


class WorkflowConflict(CatalogueError):
    code = "conflict"
    status = 409


class ShapeError(CatalogueError):
    """The upstream's response cannot be checked against the catalogue. The detail
    is for the audit record; the caller sees only a 502."""

    code = "unshapeable_response"
    status = 502
