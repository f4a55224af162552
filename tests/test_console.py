"""The console (infra/devstack/console.py and console/) in a real browser: headless Chromium,
Debian's, driven through its ChromeDriver. The consumer validator is stopped from the page,
orders placed from the page wait there, and once it is started from the page they are shown
validated. Screenshots are kept in .local/test-logs/. Without Chromium the test is skipped, and
says why (`make browser` installs it as root)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / ".local" / "test-logs"
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
VALIDATOR = "ConsumerValidatorFunction"
ORDERS = 3


@pytest.fixture()
def browser(tmp_path) -> Iterator[Any]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("Debian's chromium and chromium-driver are not installed (`make browser` installs "
                    "them as root): the console was not tested in a browser")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # Headless, and nothing of Chromium's own that would reach past this machine.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1600,1500",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def until(what: str, condition: Callable[[], Any], seconds: float = 30) -> Any:
    """Polls `condition` until it answers something true; a page redrawn meanwhile is read again."""
    from selenium.common.exceptions import StaleElementReferenceException, NoSuchElementException

    deadline = time.time() + seconds
    while True:
        try:
            answer = condition()
            if answer:
                return answer
        except (StaleElementReferenceException, NoSuchElementException):
            pass
        if time.time() > deadline:
            raise AssertionError(f"the page did not show {what} within {seconds:.0f} s")
        time.sleep(0.2)


def test_stopping_a_validator_on_the_page_holds_orders_placed_there_until_it_starts(stack, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    card = f'[data-function="{VALIDATOR}"]'
    queue = '[data-queue="ConsumerValidationQueue"]'
    try:
        browser.get(stack.state["console"])
        until("the consumer validator running and its queue empty",
              lambda: browser.find_element(By.CSS_SELECTOR, card).get_attribute("data-running") == "true"
              and browser.find_element(By.CSS_SELECTOR, queue).get_attribute("data-depth") == "0")

        until("the validator stopped", lambda: _click(browser, f"{card} button[data-action='stop']")
              and browser.find_element(By.CSS_SELECTOR, card).get_attribute("data-running") == "false")

        Select(browser.find_element(By.ID, "consumer")).select_by_value("consumer-1")
        Select(browser.find_element(By.ID, "restaurant")).select_by_value("restaurant-1")
        Select(browser.find_element(By.ID, "item")).select_by_value("item-1")
        for _ in range(ORDERS):
            browser.find_element(By.ID, "place-one").click()
        until(f"{ORDERS} orders", lambda: len(_rows(browser)) == ORDERS)
        assert not browser.find_element(By.ID, "orders-error").is_displayed(), \
            browser.find_element(By.ID, "orders-error").text

        # They wait where they should, and the page shows it as it happens: the restaurant has
        # answered, the consumer validator's queue holds them.
        until("every order's details validated", lambda: [s for _, s in _rows(browser)]
              == ["ORDER_DETAILS_VALIDATED"] * ORDERS)
        until(f"{ORDERS} messages waiting in ConsumerValidationQueue", lambda: int(
            browser.find_element(By.CSS_SELECTOR, queue).get_attribute("data-depth")) == ORDERS)
        # Followed by long polls held until the order moves, not by polling: over 8 s the order
        # reader answers at most one GET per order (a poll a second would be about 24).
        reads = _reader_invocations(stack)
        time.sleep(8)
        assert _reader_invocations(stack) - reads <= ORDERS
        assert [s for _, s in _rows(browser)] == ["ORDER_DETAILS_VALIDATED"] * ORDERS
        browser.save_screenshot(str(ARTIFACTS / "console-waiting.png"))

        started = time.time()
        until("the validator started", lambda: _click(browser, f"{card} button[data-action='start']")
              and browser.find_element(By.CSS_SELECTOR, card).get_attribute("data-running") == "true")
        until(f"{ORDERS} orders validated",
              lambda: [s for _, s in _rows(browser)] == ["VALIDATED"] * ORDERS, seconds=60)
        ways = [row.find_elements(By.TAG_NAME, "td")[3].text for row in
                browser.find_elements(By.CSS_SELECTOR, "#orders tbody tr")]
        assert all(way.startswith("PENDING +0 ms → ORDER_DETAILS_VALIDATED +") and "→ VALIDATED +" in way
                   for way in ways), ways
        until("the queue drained", lambda: browser.find_element(By.CSS_SELECTOR, queue).get_attribute("data-depth") == "0"
              and browser.find_element(By.CSS_SELECTOR, queue).get_attribute("data-in-flight") == "0")
        # The charts' figures: the functions' metrics hold these decisions, taken after the start.
        metrics = until("the decisions in the metrics", lambda: _decided_since(stack, started))
        assert metrics["decidedPerSecond"] and metrics["timeToOutcomeP50"]
        until("both charts", lambda: len(browser.find_elements(By.CSS_SELECTOR, ".chart canvas")) == 2)
        time.sleep(2.5)  # one more refresh of the page, so that the screenshot has the charts' new points
        browser.save_screenshot(str(ARTIFACTS / "console-validated.png"))
        # Each order as the API has it: the page showed what the API says.
        for order_id, _ in _rows(browser):
            assert stack.request("GET", f"/orders/{order_id}").json()["status"] == "VALIDATED"
    except BaseException:
        browser.save_screenshot(str(ARTIFACTS / "console-failed.png"))
        raise
    finally:
        stack.function(VALIDATOR, "start")


def _reader_invocations(stack) -> int:
    stats = requests.get(f"{stack.state['control']}/stats", timeout=10).json()
    return stats["functions"]["OrderReaderFunction"]["invocations"]


def _decided_since(stack, started: float) -> dict[str, list[float]] | None:
    """The buckets from `started` on where orders were decided, or None if none was."""
    metrics = requests.get(f"{stack.state['control']}/console/state", timeout=10).json()["metrics"]
    since = [i for i, at in enumerate(metrics["at"]) if at >= int(started) - int(started) % 5]
    decided = {"decidedPerSecond": [metrics["decidedPerSecond"][i] for i in since if metrics["decidedPerSecond"][i]],
               "timeToOutcomeP50": [metrics["timeToOutcomeP50"][i] for i in since
                                    if metrics["timeToOutcomeP50"][i] is not None]}
    return decided if decided["decidedPerSecond"] else None


def _click(browser, selector: str) -> bool:
    from selenium.webdriver.common.by import By

    buttons = browser.find_elements(By.CSS_SELECTOR, selector)
    if buttons:
        buttons[0].click()
        time.sleep(0.5)
    return True


def _rows(browser) -> list[tuple[str, str]]:
    """(order id, status) of each order on the page."""
    from selenium.webdriver.common.by import By

    return [(row.get_attribute("data-order"),
             row.find_element(By.CSS_SELECTOR, "td.status").get_attribute("data-status"))
            for row in browser.find_elements(By.CSS_SELECTOR, "#orders tbody tr")]


def test_the_control_port_refuses_other_origins_and_hosts(stack):
    """A page of another site in the same browser, or a DNS name rebound to 127.0.0.1, must not
    stop functions or take tokens."""
    control = stack.state["control"]
    for headers in ({"Origin": "https://attacker.example"}, {"Host": "attacker.example"}):
        for method, path in (("POST", f"/functions/{VALIDATOR}/stop"), ("POST", "/console/token"),
                             ("GET", "/console/state")):
            answer = requests.request(method, control + path, headers=headers, json={"consumerId": "consumer-1"},
                                      timeout=10)
            assert answer.status_code == 403, (headers, path, answer.text)
    assert requests.get(f"{control}/console/state", timeout=10).status_code == 200
    own = requests.post(f"{control}/console/token", json={"consumerId": "consumer-1"},
                        headers={"Origin": control}, timeout=10)
    assert own.status_code == 200 and own.json()["token"]


def test_the_console_gives_tokens_only_for_demo_consumers_and_redrives_only_dead_letter_queues(stack):
    control = stack.state["control"]
    for body in ({"consumerId": "someone-else"}, {"consumerId": ["consumer-1"]}, "not an object"):
        answer = requests.post(f"{control}/console/token", json=body, timeout=10)
        assert answer.status_code == 400, (body, answer.text)
    for queue in ("ConsumerValidationQueue", "..%2F..%2Fetc", "NoSuchQueue"):
        answer = requests.post(f"{control}/console/dead-letters/{queue}/redrive", timeout=10)
        assert answer.status_code == 404, (queue, answer.text)


def test_the_console_lists_dead_letters_as_orderctl_does(stack):
    answer = requests.get(f"{stack.state['control']}/console/dead-letters", timeout=60)
    assert answer.status_code == 200, answer.text
    queues = {queue["queue"] for queue in answer.json()["queues"]}
    assert {"ConsumerValidationDLQ", "OutboxRelayFailures", "EventDeliveryFailures"} <= queues
