from tests.idp_world import client, idp  # noqa: F401 - the fixtures of this folder
