"""What every state document (``govgate apply``, ``govgate catalogue import``)
shares, below the packages that own its sections: YAML read safely with the line
each mapping starts on (for error places, duplicate keys refused), and a planned
change (``+ user li.si``, ``~ resource JG-0001 (items)``).

Imports nothing of govgate; PyYAML only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["Change", "LineMapping", "load_yaml"]


class LineMapping(dict[str, Any]):
    """A YAML mapping that remembers the line it starts on (1-based; 0: unknown)."""

    line: int = 0


class _LineLoader(yaml.SafeLoader):
    """Safe loader whose mappings are :class:`LineMapping` and refuse a key twice."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineMapping:
    loader.flatten_mapping(node)
    out = LineMapping()
    out.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                            _construct_mapping)  # type: ignore[arg-type]


def load_yaml(text: str) -> Any:
    """The document ``text`` holds (yaml.YAMLError when it is not YAML)."""
    return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass


@dataclass(frozen=True)
class Change:
    """One planned change of a state document: what a dry run lists."""

    action: str  # "create" | "update"
    kind: str  # the section's name, singular
    key: str
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        sign = "+" if self.action == "create" else "~"
        extra = f" ({', '.join(self.fields)})" if self.fields else ""
        return f"{sign} {self.kind} {self.key}{extra}"
