"""Fixtures of the browser tests: the stack scripts/ui.sh started (its URL, admin token and CA
come in the environment), tokens of other roles made through the API, and a headless Chromium
(Debian's, driven by Debian's chromedriver) per test."""

import json
import os
import ssl
import urllib.request
import uuid
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

SCREENSHOTS = Path(os.environ.get("CHAOS_UI_SCREENSHOTS", "target/ui/screenshots"))


def need(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"the browser tests need {name}: run them with scripts/ui.sh, which starts a stack")
    return value


class Api:
    """The stack's REST API, as its admin: to set up what the browser then looks at."""

    def __init__(self) -> None:
        self.server = need("CHAOS_SERVER")
        self.token = need("CHAOS_TOKEN")
        self.context = ssl.create_default_context(cafile=need("CHAOS_CA"))

    def call(self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json"):
        request = urllib.request.Request(self.server + path, data=body, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        if body is not None:
            request.add_header("Content-Type", content_type)
        with urllib.request.urlopen(request, context=self.context, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def token_for(self, role: str) -> str:
        name = f"ui-{role}-{uuid.uuid4().hex[:8]}"
        body = json.dumps({"name": name, "role": role}).encode()
        return self.call("POST", "/v1/tokens", body)["token"]


@pytest.fixture(scope="session")
def api() -> Api:
    return Api()


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHAOS_CHROMIUM", "/usr/bin/chromium")
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"]:
        options.add_argument(argument)
    # The stack's certificate is signed by its own CA, which this throwaway profile does not
    # trust; the API fixture above verifies it.
    options.accept_insecure_certs = True
    # The console's errors: a test fails on any (a script's error, what the page's CSP refused).
    options.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})
    service = Service(executable_path=os.environ.get("CHAOS_CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.implicitly_wait(0)
    yield driver
    # Answers of 4xx are what some tests ask for (a refused apply, a forced stop).
    expected = ("favicon.ico", "the server responded with a status of 4")
    errors = [e["message"] for e in driver.get_log("browser") if not any(x in e["message"] for x in expected)]
    driver.quit()
    assert not errors, f"the browser's console has errors: {errors}"


def screenshot(target, name: str, full_page: bool = False) -> Path:
    """Saves a PNG of a page (or of one element) to SCREENSHOTS; `full_page` takes the whole
    height of the page, not only the window's."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if full_page:
        size = target.get_window_size()
        height = target.execute_script("return document.documentElement.scrollHeight")
        target.set_window_size(size["width"], min(height, 4000))
        target.save_screenshot(str(path))
        target.set_window_size(size["width"], size["height"])
    elif hasattr(target, "tag_name"):  # an element
        target.screenshot(str(path))
    else:
        target.save_screenshot(str(path))
    return path
