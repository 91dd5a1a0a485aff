from tests.browser import browser  # noqa: F401 - one Chromium per module
from tests.idp_world import client, idp  # noqa: F401 - the fixtures of this folder
