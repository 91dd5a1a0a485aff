"""Duplicate collection (数据重复上报): items another department already provides
as the authoritative source (一数一源).

An item of one resource duplicates an authoritative item of another
department's resource when the names or the titles are equal. Retired
resources are neither sources nor duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from catalogue.model import RETIRED, Resource
from texts import Text


@dataclass(frozen=True)
class Overlap:
    item: str  # the duplicating item
    resource: str  # the duplicating resource
    department: str
    source_item: str
    source_resource: str
    source_name: str
    source_department: str

    def message(self) -> str:
        return Text(
            "cat.duplicate",
            "item {item} of {resource} ({department}) is already provided as authoritative "
            "by {source_department} in {source_resource} {source_name} (item {source_item}): "
            "reuse that source instead of collecting it again",
            item=self.item, resource=self.resource, department=self.department,
            source_department=self.source_department, source_resource=self.source_resource,
            source_name=self.source_name, source_item=self.source_item)


def _sources(others: Iterable[Resource], department: str) -> list[tuple[Resource, str, str]]:
    out = []
    for r in others:
        if r.status == RETIRED or r.provider == department:
            continue
        for i in r.items:
            if i.authoritative:
                out.append((r, i.name, i.title))
    return out


def overlaps_for(resource: Resource, others: Iterable[Resource]) -> list[Overlap]:
    """Items of ``resource`` that another department provides as authoritative."""
    found = []
    sources = _sources([o for o in others if o.code != resource.code], resource.provider)
    for item in resource.items:
        for src, name, title in sources:
            if item.name == name or item.title.strip() == title.strip():
                found.append(Overlap(item.name, resource.code, resource.provider, name,
                                     src.code, src.name, src.provider))
    return found


def duplicate_warnings(resource: Resource, others: Iterable[Resource]) -> list[str]:
    return [o.message() for o in overlaps_for(resource, others)]


def all_overlaps(resources: Iterable[Resource]) -> list[Overlap]:
    """Every overlap in the catalogue, by source then duplicating resource."""
    pool = [r for r in resources if r.status != RETIRED]
    found = [o for r in pool for o in overlaps_for(r, pool)]
    return sorted(found, key=lambda o: (o.source_resource, o.source_item, o.resource, o.item))
