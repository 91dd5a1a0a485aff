from tests.browser import browser  # noqa: F401 - one Chromium per module
