"""The dashboard in a real headless Chromium, as people use it: sign in with a token, apply a
scenario with an error and see its line, apply a valid one, watch its live page update (the
journal streaming, the report and the availability timeline refreshing), stop it through the
confirmation page; and a viewer, who is offered no stop button and is refused (403) when the
browser sends the request anyway. Each page is saved as a screenshot."""

import json
import os
import time
import uuid
from pathlib import Path

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import WebDriverWait

from conftest import screenshot

ROOT = Path(__file__).resolve().parents[2]
DEMO = (ROOT / "examples" / "demo.yaml").read_text()


def server() -> str:
    return os.environ["CHAOS_SERVER"]


def wait(driver, seconds: float = 30) -> WebDriverWait:
    return WebDriverWait(driver, seconds, poll_frequency=0.2)


def sign_in(driver, token: str, page: str = "/ui/scenarios") -> None:
    driver.get(server() + page)
    # Without a session every page sends to the login page, which sends back after it.
    wait(driver).until(seen.url_contains("/ui/login"))
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait(driver).until(seen.url_contains(page))


def apply(driver, yaml: str) -> None:
    box = driver.find_element(By.ID, "yaml")
    box.clear()
    # Typing a scenario key by key is slow: the text goes in as the textarea's value.
    driver.execute_script("arguments[0].value = arguments[1];", box, yaml)
    driver.find_element(By.CSS_SELECTOR, "#apply button[type=submit]").click()


# The live part of the page is replaced every few seconds: what a test reads of it is read in one
# script, at one moment, never through elements found earlier (which a refresh makes stale).


def phase(driver) -> str:
    return driver.execute_script('return document.getElementById("status")?.dataset.phase ?? ""')


def test_an_operator_applies_watches_and_stops_a_scenario(browser, api):
    name = f"ui-{uuid.uuid4().hex[:6]}"
    sign_in(browser, api.token_for("operator"))
    screenshot(browser, "scenarios")

    # An error: the list comes back with the error, its line, and the text as written.
    broken = DEMO.replace("name: demo", f"name: {name}").replace("  seed: 7", "  seed: seven")
    apply(browser, broken)
    errors = wait(browser).until(seen.visibility_of_element_located((By.ID, "apply-errors")))
    assert "line 10" in errors.text and "spec.seed" in errors.text, errors.text
    assert "seed: seven" in browser.find_element(By.ID, "yaml").get_attribute("value")
    screenshot(browser, "apply-error")
    assert name not in api.call("GET", "/v1/scenarios").__repr__(), "a refused scenario was stored"

    apply(browser, DEMO.replace("name: demo", f"name: {name}"))
    wait(browser).until(seen.url_contains(f"/ui/scenarios/{name}?applied=created"))
    assert "Scenario created." in browser.find_element(By.CSS_SELECTOR, ".flash").text

    # Live: the phase turns Running without a reload, the journal streams in, the report and
    # the timeline are refreshed in place.
    wait(browser, 60).until(lambda d: phase(d) == "Running")
    wait(browser, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#events li")) >= 5)
    first = browser.find_element(By.ID, "live").get_attribute("data-refreshed")
    wait(browser, 30).until(lambda d: d.find_element(By.ID, "live").get_attribute("data-refreshed") != first)
    # The timeline fills in as the probes report: the application's and the control plane's.
    def measured(driver) -> set:
        return set(
            driver.execute_script(
                """return [...document.querySelectorAll(".timeline tr[data-probe]")]
                       .filter((row) => row.querySelector("i.cell.up")).map((row) => row.dataset.probe);"""
            )
        )

    wait(browser, 120).until(lambda d: {"disk", "access"} <= measured(d))
    kinds = set(browser.execute_script('return [...document.querySelectorAll("#events li")].map((li) => li.dataset.kind)'))
    assert "run-started" in kinds, kinds
    screenshot(browser, "live", full_page=True)
    # The timeline may be replaced between finding it and taking its picture: found again then.
    for attempt in range(3):
        try:
            screenshot(browser.find_element(By.ID, "availability"), "timeline")
            break
        except StaleElementReferenceException:
            if attempt == 2:
                raise

    # Stop, through the confirmation page.
    browser.find_element(By.LINK_TEXT, "Stop…").click()
    wait(browser).until(seen.url_contains(f"/ui/scenarios/{name}/stop"))
    browser.find_element(By.ID, "reason").send_keys("seen enough in the browser")
    screenshot(browser, "confirm-stop")
    browser.find_element(By.CSS_SELECTOR, "section.confirm button[type=submit]").click()
    wait(browser).until(seen.url_to_be(f"{server()}/ui/scenarios/{name}"))
    wait(browser, 120).until(lambda d: phase(d) in ("Stopping", "Stopped"))
    stored = api.call("GET", f"/v1/scenarios/{name}")
    assert stored["stop"]["reason"] == "seen enough in the browser"

    # The list shows the scenario's volumes and their checkers' verdicts.
    browser.get(server() + "/ui/scenarios")
    row = browser.find_element(By.CSS_SELECTOR, f'#scenarios tr[data-name="{name}"]')
    verdicts = row.find_element(By.CSS_SELECTOR, 'td[title^="stable"]').text
    assert sum(int(n) for n in verdicts.split(" · ")) >= 1, verdicts
    screenshot(browser, "scenarios-after")

    browser.get(server() + "/ui/workers")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#workers tbody tr")) == 2
    screenshot(browser, "workers")
    browser.get(server() + "/ui/plugins")
    screenshot(browser, "plugins")


def test_a_viewer_sees_no_stop_button_and_is_refused_when_forcing_it(browser, api):
    name = f"ui-view-{uuid.uuid4().hex[:6]}"
    api.call("POST", "/v1/scenarios", DEMO.replace("name: demo", f"name: {name}").encode(), "application/yaml")
    sign_in(browser, api.token_for("viewer"), f"/ui/scenarios/{name}")
    wait(browser).until(seen.presence_of_element_located((By.ID, "status")))
    assert not browser.find_elements(By.LINK_TEXT, "Stop…")
    assert not browser.find_elements(By.ID, "apply")
    assert "Stop everything" not in browser.page_source
    screenshot(browser, "viewer")

    # The request the button would send, made by the page itself, with the session's CSRF token.
    status = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const csrf = document.querySelector("input[name=csrf]").value;
        fetch(arguments[0], {method: "POST", body: new URLSearchParams({csrf, reason: "forced"})})
          .then((response) => done(response.status), () => done(0));
        """,
        f"/ui/scenarios/{name}/stop",
    )
    assert status == 403
    assert "stop" not in api.call("GET", f"/v1/scenarios/{name}")
    api.call("POST", f"/v1/scenarios/{name}/stop", json.dumps({"reason": "test over"}).encode())


def test_the_pages_ship_under_their_size_budget(browser, api):
    """HTML, JS and CSS of the scenarios page and a live page, as Chromium received them."""
    name = f"ui-size-{uuid.uuid4().hex[:6]}"
    api.call("POST", "/v1/scenarios", DEMO.replace("name: demo", f"name: {name}").encode(), "application/yaml")
    sign_in(browser, api.token_for("admin"))
    sizes = {}
    for page in ["/ui/scenarios", f"/ui/scenarios/{name}"]:
        browser.get(server() + page)
        wait(browser).until(lambda d: d.execute_script("return document.readyState") == "complete")
        sizes[page] = browser.execute_script(
            """
            const entries = [performance.getEntriesByType("navigation")[0], ...performance.getEntriesByType("resource")];
            return entries.filter((e) => e.entryType === "navigation" || ["script", "link", "css"].includes(e.initiatorType))
                          .reduce((sum, e) => sum + e.decodedBodySize, 0);
            """
        )
    assert all(0 < size < 200 * 1024 for size in sizes.values()), sizes
    api.call("POST", f"/v1/scenarios/{name}/stop", json.dumps({"reason": "test over"}).encode())
