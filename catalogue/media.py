"""The media type and charset of a ``Content-Type`` value: one reading for the shaper
(the upstream's answer) and the shaped request's body check (the consumer's body)."""

from __future__ import annotations


def media_type(content_type: str | None) -> tuple[str, str | None]:
    """The media type of a ``Content-Type`` value (lower case, "" when missing) and its
    ``charset`` parameter (lower case), if any."""
    if content_type is None:
        return "", None
    media, *params = content_type.split(";")
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return media.strip().lower(), charset
