"""The explorer page in a real browser: headless Chromium driven by Selenium.

One page (a small untrained model on the sort task), one browser session for the module.
The numbers the page shows are compared with the tensors of an independent forward and
backward pass (``retain_grad`` on the attention weights, the parameters' ``.grad``).
Skips where Selenium, Chromium or ChromeDriver is missing (Debian: apt-get install chromium
chromium-driver; .ci/run installs them).

The screenshot in the README is taken by this browser:
``PYTHONPATH=$PWD python tests/test_explorer_browser.py docs/explorer.png``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser")) if p), None)
CHROMEDRIVER = shutil.which("chromedriver")
try:
    import selenium  # noqa: F401

    HAVE_SELENIUM = True
except ImportError:
    HAVE_SELENIUM = False

pytestmark = [
    pytest.mark.skipif(not HAVE_SELENIUM, reason="selenium is not installed (pip install selenium)"),
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"),
    pytest.mark.skipif(CHROMEDRIVER is None, reason="ChromeDriver is not installed (apt-get install chromium-driver)"),
]
FLAGS = (
    "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking "
    "--disable-component-update --disable-sync --disable-dev-shm-usage"
).split()


def start_browser(profile: str, width: int = 1400, height: int = 1000):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")  # a fresh, empty profile
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def reference(trainer, batch):
    """An independent forward and backward pass: attention weights with their gradients, .grad."""
    model = trainer.model
    model.eval()
    for p in model.parameters():
        p.grad = None
    layers = [layer.self_attn for layer in model.encoder.layers]
    for attn in layers:
        attn.keep_attention = True
    try:
        trainer.loss(model(batch.tokens, batch.padding_mask), batch).backward()
        maps = [(a.last_attention.detach().numpy()[0], a.last_attention.grad.numpy()[0]) for a in layers]
        grads = {name: p.grad.numpy().astype(np.float64) for name, p in model.named_parameters()}
    finally:
        for attn in layers:
            attn.keep_attention, attn.last_attention = False, None
        for p in model.parameters():
            p.grad = None
    return maps, grads


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    import minigrad
    from encoder.cli.explore import _small_trainer, explore_trainer

    minigrad.accel.disable()
    trainer = _small_trainer()
    page = explore_trainer(trainer, example=1)
    path = page.save(tmp_path_factory.mktemp("explorer") / "page.html")
    task = trainer.task
    batch = task.collate([task.examples("valid", 2, seed=0)[1]])
    maps, grads = reference(trainer, batch)
    driver = start_browser(str(tmp_path_factory.mktemp("profile")))
    try:
        driver.get(path.as_uri())
        yield {"driver": driver, "page": page, "maps": maps, "grads": grads}
    finally:
        driver.quit()


def errors_in(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


def network_requests(driver) -> list[str]:
    import json

    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            # the page's own requests (the browser's start page loads chrome:// resources)
            url, document = message["params"]["request"]["url"], message["params"].get("documentURL", "")
            if url.startswith(("http:", "https:", "ws:", "wss:", "ftp:")) or (
                document.startswith("file:") and not url.startswith(("file:", "data:"))
            ):
                urls.append(url)
    return urls + driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")


def click(driver, element) -> None:
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def shown_number(driver, css: str) -> float:
    from selenium.webdriver.common.by import By

    return float(driver.find_element(By.CSS_SELECTOR, css).text)


def test_page_loads_without_errors_or_network(session):
    driver = session["driver"]
    assert driver.execute_script("return document.body.getAttribute('data-ready')") == "1"
    assert errors_in(driver) == []
    assert network_requests(driver) == []


def test_clicking_a_collapsed_module_lists_its_ops_and_parameters(session):
    from selenium.webdriver.common.by import By

    driver, data = session["driver"], session["page"].data
    assert driver.find_element(By.ID, "svg-collapsed").is_displayed()
    name = "encoder.layers.1.ff.linear1.weight"
    (leaf,) = [leaf for leaf in data["leaves"] if leaf["name"] == name]
    group = leaf["units"]["collapsed"]
    assert group.startswith("g") and data["groups"][group] == "encoder.layers.1.ff (PositionwiseFeedForward)"
    click(driver, driver.find_element(By.CSS_SELECTOR, f'#svg-collapsed g.node[data-id="{group}"]'))
    details = driver.find_element(By.ID, "details")
    assert data["groups"][group] in details.find_element(By.CSS_SELECTOR, "h3").text
    members = [n["op"] for n in data["nodes"] if n["units"]["collapsed"] == group]
    assert [li.text.split()[0] for li in details.find_elements(By.CSS_SELECTOR, "ol li")] == members
    click(driver, details.find_element(By.CSS_SELECTOR, f'a.link[data-ref="{leaf["id"]}"]'))
    expected = float(np.linalg.norm(session["grads"][name]))
    assert shown_number(driver, '#details [data-stat="grad-norm"]') == pytest.approx(expected, rel=2e-5)


def test_clicking_a_node_shows_the_gradient_norm(session):
    from selenium.webdriver.common.by import By

    driver, data = session["driver"], session["page"].data
    click(driver, driver.find_element(By.ID, "view-expanded"))
    name = "encoder.layers.0.self_attn.q_proj.weight"
    (leaf,) = [leaf for leaf in data["leaves"] if leaf["name"] == name]
    node = driver.find_element(By.CSS_SELECTOR, f'#svg-expanded g.node[data-id="{leaf["units"]["expanded"]}"]')
    click(driver, node)
    assert name in driver.find_element(By.CSS_SELECTOR, "#details h3").text
    expected = float(np.linalg.norm(session["grads"][name]))
    assert shown_number(driver, '#details [data-stat="grad-norm"]') == pytest.approx(expected, rel=2e-5)

    # an op node: the attention weights of layer 1 receive dL/dA
    (op,) = [n for n in data["nodes"] if n["id"] == data["attention"][1]["node"]]
    click(driver, driver.find_element(By.CSS_SELECTOR, f'#svg-expanded g.node[data-id="{op["units"]["expanded"]}"]'))
    assert driver.find_element(By.CSS_SELECTOR, "#details h3").get_attribute("data-node") == op["id"]
    g = session["maps"][1][1].astype(np.float64)
    # the page holds the whole batch's gradient; the batch is one sequence here
    assert shown_number(driver, '#details [data-stat="grad-norm"]') == pytest.approx(np.linalg.norm(g), rel=2e-5)
    assert "attention_weights" in driver.find_element(By.ID, "details").text
    assert "minigrad/ops/attention.py:" in driver.find_element(By.ID, "details").text


def test_replay_visits_every_node_of_the_backward_order(session):
    from selenium.webdriver.common.by import By

    driver, data = session["driver"], session["page"].data
    click(driver, driver.find_element(By.ID, "replay-first"))
    replay = driver.find_element(By.ID, "replay")
    nxt = driver.find_element(By.ID, "replay-next")
    seen = [replay.get_attribute("data-node")]
    for _ in range(len(data["order"]) - 1):
        nxt.click()
        seen.append(replay.get_attribute("data-node"))
    assert seen == data["order"]
    assert sorted(seen) == sorted(n["id"] for n in data["nodes"])
    # the last step is highlighted in the graph, every earlier one marked as processed
    current = driver.find_elements(By.CSS_SELECTOR, "#svg-expanded g.node.current")
    assert [g.get_attribute("data-id") for g in current] == [data["nodes"][0]["units"]["expanded"]]
    assert len(driver.find_elements(By.CSS_SELECTOR, "#svg-expanded g.node.visited")) >= len(data["order"]) - 1

    # a step where a gradient is the sum of two terms: the consumers that sent them are marked
    nodes = {n["id"]: n for n in data["nodes"]}
    k = next(k for k, ref in enumerate(data["order"]) if len(nodes[ref]["terms"]) >= 2)
    driver.execute_script(
        "const s = document.getElementById('replay-slider');"
        "s.value = arguments[0]; s.dispatchEvent(new Event('input'))",
        k,
    )
    terms = nodes[data["order"][k]]["terms"]
    senders = driver.find_elements(By.CSS_SELECTOR, "#svg-expanded g.node.sender")
    expected = sorted(nodes[t["from"]]["units"]["expanded"] for t in terms)
    assert sorted(g.get_attribute("data-id") for g in senders) == expected
    rows = driver.find_elements(By.CSS_SELECTOR, "#replay table.terms tr.term")
    assert len(rows) == len(terms)
    running = [float(r.find_elements(By.TAG_NAME, "td")[4].get_attribute("data-v")) for r in rows]
    assert running == pytest.approx([t["sum_norm"] for t in terms])
    assert running[-1] == pytest.approx(nodes[data["order"][k]]["grad"]["stats"]["norm"], rel=1e-5)
    # the current node is scrolled into its box's view; "fit" scales the picture to the box's width
    box = driver.find_element(By.ID, "svg-expanded")
    inside = "const b = arguments[0].getBoundingClientRect(), r = arguments[1].getBoundingClientRect();" \
        "return r.left >= b.left && r.right <= b.right && r.top >= b.top && r.bottom <= b.bottom"
    current = driver.find_element(By.CSS_SELECTOR, "#svg-expanded g.node.current")
    assert driver.execute_script(inside, box, current)
    click(driver, driver.find_element(By.ID, "zoom-fit"))
    width = driver.execute_script("return arguments[0].querySelector('svg').getBoundingClientRect().width", box)
    assert 0.5 * box.size["width"] < width <= box.size["width"]


def read_map(driver, key: str, shape: tuple[int, int]) -> np.ndarray:

    values = driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(td => Number(td.getAttribute('data-v')))",
        f'#attention table[data-map="{key}"] td[data-v]',
    )
    return np.array(values, dtype=np.float64).reshape(shape)


def test_attention_panels_equal_the_tensors(session):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = session["driver"]
    layer, head = 1, 1
    Select(driver.find_element(By.ID, "att-layer")).select_by_value(str(layer))
    Select(driver.find_element(By.ID, "att-head")).select_by_value(str(head))
    a, g = (m[head].astype(np.float64) for m in session["maps"][layer])
    ds = a * (g - (a * g).sum(-1, keepdims=True))
    for key, expected in (("A", a), ("dA", g), ("dS", ds), ("AdA", a * g)):
        np.testing.assert_allclose(read_map(driver, key, a.shape), expected, rtol=1e-5, atol=1e-9, err_msg=key)

    # two query tokens selected: their summed attention over the keys
    for q in (0, 2):
        click(driver, driver.find_element(By.CSS_SELECTOR, f'#attention table[data-map="A"] th.row[data-q="{q}"]'))
    sums = driver.execute_script(
        "return Array.from(document.querySelectorAll('#att-sum td[data-v]'))"
        ".map(td => Number(td.getAttribute('data-v')))"
    )
    np.testing.assert_allclose(sums, a[0] + a[2], rtol=1e-5)

    # hovering a token highlights its row and its column in every map
    cell = driver.find_element(By.CSS_SELECTOR, '#attention table[data-map="dS"] td[data-q="1"][data-k="3"]')
    ActionChains(driver).move_to_element(cell).perform()
    lit = driver.find_elements(By.CSS_SELECTOR, '#attention table[data-map="A"] td.hl')
    n = a.shape[0]
    assert {(int(c.get_attribute("data-q")), int(c.get_attribute("data-k"))) for c in lit} == {
        (i, j) for i in range(n) for j in range(n) if i in (1, 3) or j in (1, 3)
    }


def test_no_console_error_after_clicking_around(session):
    assert errors_in(session["driver"]) == []
    assert network_requests(session["driver"]) == []


def screenshot(out: str) -> None:
    """Take the README's picture of the page (the demo model's sizes, untrained)."""
    from encoder.cli.explore import _small_trainer, explore_trainer

    with tempfile.TemporaryDirectory() as tmp:
        path = explore_trainer(_small_trainer(), example=1).save(Path(tmp) / "page.html")
        driver = start_browser(str(Path(tmp) / "profile"), 1300, 2500)
        try:
            driver.get(path.as_uri())
            driver.execute_script(
                "const D = window.EXPLORER, slider = document.getElementById('replay-slider');"
                "slider.value = D.order.indexOf(D.attention[0].node);"
                "slider.dispatchEvent(new Event('input'));"
                "document.querySelector('#replay a.link').click();"
                "const box = document.getElementById('svg-collapsed'), g = box.querySelector('g.node.current');"
                "box.scrollTop += g.getBoundingClientRect().top - box.getBoundingClientRect().top - 200;"
                "for (const q of [1, 3]) document.querySelector(`#attention th.row[data-q='${q}']`).click();"
            )
            driver.save_screenshot(out)
        finally:
            driver.quit()
    from PIL import Image  # matplotlib's dependency: 128 colours keep the committed file small

    with Image.open(out) as image:
        image.convert("RGB").quantize(colors=128).save(out, optimize=True)


if __name__ == "__main__":
    screenshot(sys.argv[1] if len(sys.argv) > 1 else "docs/explorer.png")
