"""``kgllm serve``: the HTTP API (answers, input limits, rate limit) on a real index, and the web page in a real
headless browser (Debian chromium driven by selenium): a person types a question and sees the answer, the
cited triples and the subgraph."""

from __future__ import annotations

import json
import shutil
import threading
import urllib.error
import urllib.request

import pytest
from test_ask_answer import build_rag_index

from kgllm.rdf import DBO, DBR, triple_id


@pytest.fixture(scope="module")
def server(session_tmp, dbpedia_graph):
    from kgllm.ask.answer import Answerer
    from kgllm.ask.serve import make_server

    srv = make_server(Answerer.from_dir(build_rag_index(session_tmp, dbpedia_graph)), "127.0.0.1", 0,
                      rate_per_minute=1000)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    t.join(10)


def post(url: str, body, ctype: str = "application/json") -> tuple[int, dict, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url + "ask", data=data, headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read()), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), dict(e.headers)


def test_post_ask_returns_the_answer_object(server):
    code, out, _ = post(server.url, {"question": "What is the hub airport of Lufthansa?"})
    assert code == 200 and out["supported"] and out["retriever"] == "hybrid"
    assert {c["id"] for c in out["citations"]} == {
        triple_id(f"<{DBR}Lufthansa>", f"<{DBO}hubAirport>", f"<{DBR}{x}>") for x in ("Frankfurt_Airport",
                                                                                     "Munich_Airport")}
    code, out, _ = post(server.url, {"question": "What is the boiling point of Lufthansa?", "retriever": "graph"})
    assert code == 200 and out["answer"] == "not in the graph"
    with urllib.request.urlopen(server.url + "health", timeout=10) as r:
        assert json.loads(r.read())["triples"] > 100


def test_input_limits(server):
    assert post(server.url, {"question": "x" * 501})[0] == 400
    assert post(server.url, {"question": "   "})[0] == 400
    assert post(server.url, {"question": "KLM?", "retriever": "oracle"})[0] == 400
    assert post(server.url, {"q": "KLM?"})[0] == 400
    assert post(server.url, b"{not json")[0] == 400
    assert post(server.url, b"question=KLM", "application/x-www-form-urlencoded")[0] == 415
    assert post(server.url, {"question": "a" * 9000})[0] == 413


def test_rate_limit_per_client(server):
    from kgllm.ask.serve import RateLimiter

    rl = RateLimiter(2, window=60)
    assert rl.check("a", 0.0) == 0 and rl.check("a", 1.0) == 0
    assert rl.check("a", 2.0) == pytest.approx(58.0) and rl.check("b", 2.0) == 0
    assert rl.check("a", 60.5) == 0  # the first request left the window
    old = server.limiter
    server.limiter = RateLimiter(1)
    try:
        assert post(server.url, {"question": "KLM?"})[0] in (200, 400)
        code, body, headers = post(server.url, {"question": "KLM?"})
        assert code == 429 and int(headers["Retry-After"]) >= 1 and "per minute" in body["error"]
    finally:
        server.limiter = old


@pytest.mark.slow
def test_web_page_answers_in_a_real_browser(server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = _chrome_with_profile(tmp_path)
    try:
        browser.get(server.url)
        assert browser.title == "kgllm ask"
        box = browser.find_element(By.ID, "question")
        box.send_keys("In which city is the manufacturer of the Saab 9000 located?")
        browser.find_element(By.ID, "ask").click()
        wait = WebDriverWait(browser, 60)
        wait.until(lambda b: b.find_element(By.ID, "answer").text.strip() != "")
        assert browser.find_element(By.ID, "answer").text == "Trollhättan"
        rows = browser.find_elements(By.CSS_SELECTOR, "#citations tbody tr")
        assert [r.find_elements(By.TAG_NAME, "td")[2].text for r in rows] == ["manufacturer", "location city"]
        assert "two_hop" in browser.find_element(By.ID, "meta").text
        # The subgraph shows the evidence: the cited edges are highlighted, the topic and answer drawn.
        assert len(browser.find_elements(By.CSS_SELECTOR, "#subgraph line.edge.cited")) == 2
        labels = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#subgraph .node text")]
        assert "Saab 9000" in labels and "Trollhättan" in labels
        # Unsupported questions say so, in the page too.
        box.clear()
        box.send_keys("What is the boiling point of Lufthansa?")
        browser.find_element(By.ID, "ask").click()
        wait.until(lambda b: b.find_element(By.ID, "answer").text == "not in the graph")
        assert "unsupported" in browser.find_element(By.ID, "answer").get_attribute("class")
        assert not browser.find_element(By.ID, "citations").is_displayed()
        # No script errors on the page (CSP nonce accepted, nothing blocked).
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
    finally:
        browser.quit()


def _chrome_with_profile(tmp_path):
    """Chromium with a fresh profile directory (no state from other runs)."""
    import os

    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager must not try to download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "chromium"
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
              f"--user-data-dir={tmp_path / 'chrome-profile'}"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = shutil.which("chromedriver")
    assert driver and shutil.which("chromium"), \
        "install Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)"
    return webdriver.Chrome(service=Service(driver), options=opts)
