"""scim2-tester (the SCIM compliance checker of the python-scim project) against the
live gateway, as a platform-level client: discovery (ServiceProviderConfig, Schemas,
ResourceTypes, their methods and unknown ids), an unknown URL, and for Users the whole
life cycle it checks (create, read, read without id, attributes/excludedAttributes
on read, list and .search, PUT, DELETE then 404, PATCH add/remove/replace of every
published attribute). Zero failures.

Groups are govgate's roles, a fixed set: the checker's Group life cycle starts by
creating a group, which govgate refuses (403, audited), so it runs for Users only;
tests/scim/test_groups.py covers Groups with scim2-client."""

from __future__ import annotations

from collections import Counter

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from tests.scim.conftest import World

PASSED = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE}


def test_scim2_tester_finds_nothing(world: World) -> None:
    with httpx2.Client(base_url=world.base, timeout=20, headers={
            "Authorization": f"Bearer {world.token('scim-platform')}"}) as http:
        results = check_server(SyncSCIMClient(http), resource_types=["User"])
    ran = [r for r in results if r.status is not Status.SKIPPED]
    failed = [f"{r.title}: {r.status.name}: {r.reason}" for r in ran
              if r.status not in PASSED]
    assert not failed, "\n".join(failed)
    titles = Counter(r.title for r in ran)
    # what ran, so that a checker that silently skips more is noticed
    assert len(ran) >= 30, titles
    for needed in ("object_creation", "object_query", "object_replacement",
                   "object_deletion", "check_add_attribute", "check_remove_attribute",
                   "check_replace_attribute", "search_with_attributes",
                   "query_all_schemas", "query_all_resource_types", "random_url"):
        assert titles[needed] >= 1, (needed, titles)
