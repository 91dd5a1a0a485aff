import pytest, json
def test_smoke(world):
    with world.http() as c:
        for p in ["/ServiceProviderConfig", "/Schemas", "/ResourceTypes", "/Users?count=2", "/Groups", "/Users?filter=userName%20sw%20%22zh%22"]:
            r = c.get(p); print(p, r.status_code, r.headers.get("content-type"), r.text[:600])
