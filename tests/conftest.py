import os
import shutil

import pytest


def chromium_path() -> str | None:
    return shutil.which("chromium") or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
    )


def pytest_collection_modifyitems(config, items):
    """Browser tests need Debian's chromium. CI installs it and sets REQUIRE_BROWSER=1, so
    there a missing browser fails the run; on a newcomer's machine the tests are skipped."""
    if chromium_path() or os.environ.get("REQUIRE_BROWSER") == "1":
        return
    skip = pytest.mark.skip(reason="Debian chromium not installed (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate limits and heartbeats live in the cache, small rows in per-process memos
    (kernel.memo); every test starts without them (ids come back after a rollback)."""
    from django.conf import settings

    if settings.configured:
        from django.core.cache import cache

        from kernel import memo

        cache.clear()
        memo.forget_all()
    yield


@pytest.fixture
def live_asgi_server(transactional_db):
    """A real uvicorn process (HTTP + websockets) on the test database."""
    from tests.servers import ServerProcess

    server = ServerProcess().start()
    yield server
    server.stop()


@pytest.fixture
def browser():
    """Headless Debian chromium driven by Playwright (no browser download)."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread; the test's own ORM
    # calls are still plain synchronous code, so tell Django not to refuse them.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=chromium_path() or "/usr/bin/chromium",
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield instance
        instance.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
