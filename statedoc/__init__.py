"""What every state document (``govgate apply``, ``govgate catalogue import``)
shares, below the packages that own its sections: YAML read safely with the line
each mapping starts on (for error places, duplicate keys refused, every key read as
the text written), a planned change (``+ user li.si``, ``~ resource JG-0001 (items)``),
and the bounded read of an input file whatever it is (a pipe or a device has no size).

Imports nothing of govgate; PyYAML only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["Change", "LineMapping", "load_yaml", "read_bounded"]


class LineMapping(dict[str, Any]):
    """A YAML mapping that remembers the line it starts on (1-based; 0: unknown)."""

    line: int = 0


# what a document may hold once its aliases are expanded: more than a file of the
# largest size read (1 MB) holds written out, far less than an alias bomb's 10**9
MAX_NODES = 1_000_000


class _LineLoader(yaml.SafeLoader):
    """Safe loader whose mappings are :class:`LineMapping` and refuse a key twice, and
    which counts what each node expands to: an alias is the whole node it names again,
    so nine lines of anchors ("billion laughs") are a billion values to whatever walks
    the document (a validator, an error message's ``repr``). A document over
    :data:`MAX_NODES` expanded, or an alias to a node inside itself, is refused; so is
    a NUL (``"\\0"``) in any scalar: PostgreSQL stores none."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}  # id(node) → its size with aliases expanded

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            named = self.anchors.get(event.anchor)  # type: ignore[attr-defined]
            if named is not None and id(named) not in self._sizes:
                raise yaml.composer.ComposerError(
                    None, None, "an alias to the node that contains it", event.start_mark)
            # its size is known, and counts again where it is used
            return super().compose_node(parent, index)  # type: ignore[misc, no-any-return]
        node = super().compose_node(parent, index)  # type: ignore[misc]
        if isinstance(node, yaml.ScalarNode):
            if "\x00" in node.value:  # "\0" in a quoted scalar: no text may hold one
                raise yaml.composer.ComposerError(None, None, "a NUL character",
                                                  node.start_mark)
            if not node.value.isascii():
                try:  # "\ud800" (or an escaped pair, which PyYAML does not join)
                    node.value.encode("utf-8")
                except UnicodeEncodeError:
                    raise yaml.composer.ComposerError(
                        None, None, "an unpaired surrogate (write the character itself)",
                        node.start_mark) from None
            size = 1
        elif isinstance(node, yaml.MappingNode):
            size = 1 + sum(self._sizes[id(k)] + self._sizes[id(v)] for k, v in node.value)
        else:
            size = 1 + sum(self._sizes[id(child)] for child in node.value)
        if size > MAX_NODES:
            raise yaml.composer.ComposerError(
                None, None, f"more than {MAX_NODES} values once its aliases are expanded",
                node.start_mark)
        self._sizes[id(node)] = size
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # PyYAML's constructors raise plain exceptions for a value their tag cannot
        # hold (``2026-13-45``, ``!!int x``, ``!!bool x``, 5000 digits): a YAML error
        # at the value's line like any other
        try:
            return super().construct_object(node, deep)  # type: ignore[misc]
        except yaml.YAMLError:
            raise
        except (ValueError, KeyError, AttributeError, TypeError, OverflowError):
            what = repr(node.value[:40]) if isinstance(node.value, str) else "the value"
            kind = str(node.tag).rsplit(":", 1)[-1]
            raise yaml.constructor.ConstructorError(
                None, None, f"{what} is not a valid {kind}", node.start_mark) from None


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineMapping:
    loader.flatten_mapping(node)
    out = LineMapping()
    out.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):  # ``? [a]``, ``? {a: 1}``
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain value, not a list or mapping",
                key_node.start_mark)
        # every key of a state document is a name: ``2026-01-01:``, ``3:`` or ``on:``
        # are the names as written, not a date, a number or True (which a message would
        # show as ``datetime.date(...)``, and which cannot be sorted beside text)
        key = key_node.value
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                            _construct_mapping)  # type: ignore[arg-type]


def load_yaml(text: str) -> Any:
    """The document ``text`` holds (yaml.YAMLError when it is not YAML)."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:  # the parser recurses once per level: "[[[[...]]]]"
        raise yaml.YAMLError("nested too deeply") from None


def read_bounded(path: str | os.PathLike[str], limit: int) -> bytes | None:
    """The bytes of the file at ``path``, or None when it holds more than ``limit``.

    Reads at most ``limit + 1`` bytes whatever the file is: its size as ``stat`` gives
    it says nothing for a pipe (``apply -f <(...)``), a device (``/dev/zero`` never
    ends) or ``/proc``. What the system refuses (no such file, a directory, a name
    too long, an I/O error) is raised as the OSError it is, for the caller to word."""
    with open(path, "rb") as fh:  # a directory: IsADirectoryError; "": FileNotFoundError
        data = fh.read(limit + 1)
    return None if len(data) > limit else data


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
