"""The dashboard's page budgets, measured in headless Chromium (scripts/ui.sh --budget runs this
against a release stack): the scenarios page with 100 scenarios, and the live page of a scenario
of 10,000 instances once they all run. For each page: DOMContentLoaded after navigation (the
Navigation Timing entry, median and range over RUNS loads) and the bytes of HTML, JS and CSS
Chromium received. Prints JSON."""

import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "browser"))
from conftest import Api  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

RUNS = 7
INSTANCES = int(os.environ.get("CHAOS_UI_BUDGET_INSTANCES", "10000"))
SCENARIOS = 100


def say(text: str) -> None:
    print(f"ui-budget: {text}", file=sys.stderr, flush=True)


def noop(name: str, replicas: int) -> bytes:
    return (
        f"apiVersion: chaosctl.dev/v1alpha1\nkind: Scenario\nmetadata: {{name: {name}}}\n"
        f"spec:\n  cluster: default\n  tasks:\n    - {{name: noop, plugin: noop, replicas: {replicas}}}\n"
    ).encode()


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"]:
        options.add_argument(argument)
    options.accept_insecure_certs = True
    return webdriver.Chrome(options=options, service=Service(executable_path="/usr/bin/chromedriver"))


def measure(driver, url: str) -> dict:
    loads = []
    shipped = 0
    for _ in range(RUNS):
        driver.get(url)
        timing = driver.execute_script(
            """
            const nav = performance.getEntriesByType("navigation")[0];
            const assets = performance.getEntriesByType("resource")
                .filter((e) => ["script", "link", "css"].includes(e.initiatorType));
            return {dcl: nav.domContentLoadedEventEnd - nav.startTime,
                    bytes: nav.decodedBodySize + assets.reduce((s, e) => s + e.decodedBodySize, 0),
                    assets: assets.length};
            """
        )
        loads.append(timing["dcl"])
        # The first load fetches the assets; later ones take them from the cache.
        shipped = max(shipped, timing["bytes"])
    return {
        "dom_content_loaded_ms": {"median": round(statistics.median(loads), 1), "min": round(min(loads), 1), "max": round(max(loads), 1)},
        "html_js_css_bytes": shipped,
    }


def main() -> None:
    api = Api()
    say(f"applying {SCENARIOS - 1} small scenarios and one of {INSTANCES} instances")
    for i in range(SCENARIOS - 1):
        api.call("POST", "/v1/scenarios", noop(f"budget-{i:03}", 1), "application/yaml")
    api.call("POST", "/v1/scenarios", noop("budget-big", INSTANCES), "application/yaml")
    deadline = time.monotonic() + 900
    while True:
        view = api.call("GET", "/v1/scenarios/budget-big")
        running = view["status"].get("instances", {}).get("Running", 0)
        if running >= INSTANCES:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"only {running} of {INSTANCES} instances ran within 15 minutes")
        say(f"{running} of {INSTANCES} running")
        time.sleep(5)
    driver = browser()
    try:
        driver.get(os.environ["CHAOS_SERVER"] + "/ui/login")
        driver.find_element("id", "token").send_keys(os.environ["CHAOS_TOKEN"])
        driver.find_element("css selector", "form button[type=submit]").click()
        time.sleep(1)
        server = os.environ["CHAOS_SERVER"]
        result = {
            "scenarios": SCENARIOS,
            "instances": INSTANCES,
            "runs": RUNS,
            "scenarios_page": measure(driver, f"{server}/ui/scenarios"),
            "live_page": measure(driver, f"{server}/ui/scenarios/budget-big"),
        }
    finally:
        driver.quit()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
