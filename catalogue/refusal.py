"""Why a shaped request is refused before the upstream is called (``catalogue.query``,
``catalogue.request_names``)."""

from __future__ import annotations

from dataclasses import dataclass

MAX_SHOWN = 80  # of a refused name, in the answer and the audit record
BODY = "(body)"  # the parameter a refusal of a body as a whole names


@dataclass(frozen=True)
class Refusal:
    """Why a query string or body is refused: the parameter (as sent, cut short), why,
    and the item it names (``item``) or whether it is GraphQL (``graphql``) or a
    free-text search (``free_text``); a value as sent is never shown (it may be the
    data itself)."""

    parameter: str
    reason: str
    item: str | None = None
    graphql: bool = False
    free_text: bool = False
