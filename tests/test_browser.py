"""The app in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright's Python package).

Skipped when Chromium or Playwright is absent. Set QA_CHROMIUM to use another Chromium binary and
QA_SCREENSHOT_DIR to keep the screenshots somewhere other than pytest's temporary folder.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
from served_app import free_port

CHROMIUM = Path(os.environ.get("QA_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]
COMPLAINTS = "How many complaints about adult social care did Birmingham receive?"
TIMEOUT_MS = 60_000


def _missing() -> str:
    """Why the browser tests cannot run here ("" when they can)."""
    if not CHROMIUM.exists():
        return f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install playwright; no browser download needed)"
    return ""


# Checked at collection, so a machine without a browser skips before the model and index load.
pytestmark = [pytest.mark.browser, pytest.mark.skipif(bool(_missing()), reason=_missing() or "-")]


@pytest.fixture(scope="module")
def sync_playwright():
    from playwright.sync_api import sync_playwright

    return sync_playwright


@pytest.fixture(scope="module")
def app_url(assistant, tmp_path_factory):
    from qa.app_settings import AppSettings
    from qa.ui import build_app, launch

    settings = AppSettings(port=free_port(), feedback_log=tmp_path_factory.mktemp("browser") / "feedback.jsonl")
    demo = build_app(assistant, settings)
    _, url, _ = launch(demo, assistant, settings, prevent_thread_lock=True, quiet=True)
    yield url, settings.feedback_log
    demo.close()


@pytest.fixture
def page(sync_playwright, app_url):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(app_url[0], wait_until="domcontentloaded")
            page.locator("#qa-question textarea").wait_for()
            yield page
        finally:
            browser.close()


def _ask(page, question: str) -> None:
    box = page.locator("#qa-question textarea")
    box.fill(question)
    page.locator("#qa-ask").click()


def _screenshot_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("QA_SCREENSHOT_DIR", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_question_shows_answer_with_marker_and_highlighted_source(page, tmp_path):
    _ask(page, COMPLAINTS)
    answer = page.locator("#qa-chat .message.bot, #qa-chat [data-testid='bot']").last
    answer.wait_for()
    page.wait_for_function("document.querySelector('#qa-chat').innerText.includes('663')", timeout=TIMEOUT_MS)
    mark = page.locator("#qa-sources mark").first
    mark.wait_for(state="visible")
    chat_text = page.locator("#qa-chat").inner_text()
    assert "[1]" in chat_text and "\\[" not in chat_text  # the Markdown escapes render as plain brackets
    assert any("663 complaints" in m for m in page.locator("#qa-sources mark").all_inner_texts())
    sources_text = page.locator("#qa-sources").inner_text()
    assert "CQC assessment of Birmingham City Council" in sources_text and "17 November 2023" in sources_text
    shot = _screenshot_dir(tmp_path) / "answer.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_feedback_from_the_page_reaches_the_log(page, app_url):
    log = app_url[1]
    before = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    _ask(page, COMPLAINTS)
    page.wait_for_function("document.querySelector('#qa-chat').innerText.includes('663')", timeout=TIMEOUT_MS)
    page.get_by_text("Feedback on the latest answer").click()
    page.locator("#qa-rating").get_by_text("Wrong source").click()
    page.locator("#qa-comment textarea").fill("Checked against the PDF")
    page.locator("#qa-send-feedback").click()
    page.wait_for_function("document.querySelector('#qa-feedback-status').innerText.includes('Thank you')",
                           timeout=TIMEOUT_MS)
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines[: len(before)] == before and len(lines) == len(before) + 1
    record = json.loads(lines[-1])
    assert (record["rating"], record["comment"], record["question"]) == (
        "wrong source", "Checked against the PDF", COMPLAINTS)


def test_html_in_a_question_is_shown_as_text_and_never_runs(page, tmp_path):
    attack = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script> What score did Westminster get?'
    _ask(page, attack)
    page.wait_for_function("document.querySelector('#qa-chat').innerText.includes('onerror')", timeout=TIMEOUT_MS)
    page.locator("#qa-chat .message.bot, #qa-chat [data-testid='bot']").last.wait_for()
    page.wait_for_timeout(500)  # give an injected handler the chance to fire, were there one
    assert page.evaluate("window.__xss") is None
    assert page.locator("#qa-chat img[src='x'], #qa-chat script").count() == 0
    assert '<img src=x onerror="window.__xss=1">' in page.locator("#qa-chat").inner_text()
    page.screenshot(path=str(_screenshot_dir(tmp_path) / "html_question.png"), full_page=True)


def test_a_follow_up_shows_what_was_searched_and_new_topic_clears_the_chat(page, tmp_path):
    _ask(page, "What score did Birmingham get for governance?")
    page.wait_for_function("document.querySelectorAll('#qa-chat .message.bot, #qa-chat [data-testid=\"bot\"]')"
                           ".length >= 1 && document.querySelector('#qa-sources').innerText.includes('Birmingham')",
                           timeout=TIMEOUT_MS)
    _ask(page, "And Westminster?")
    page.wait_for_function("document.querySelector('#qa-chat').innerText.includes('Searching for:')",
                           timeout=TIMEOUT_MS)
    chat_text = page.locator("#qa-chat").inner_text()
    searching = next(line for line in chat_text.splitlines() if "Searching for:" in line)
    assert "Westminster" in searching and "governance" in searching
    page.wait_for_function("document.querySelector('#qa-sources').innerText.includes('Westminster City Council')",
                           timeout=TIMEOUT_MS)
    page.screenshot(path=str(_screenshot_dir(tmp_path) / "follow_up.png"), full_page=True)
    page.locator("#qa-new-topic").click()
    page.wait_for_function("!document.querySelector('#qa-chat').innerText.includes('Searching for:')",
                           timeout=TIMEOUT_MS)
    assert "New topic" in page.locator("#qa-sources").inner_text()


AXE_VERSION = "4.14.1"


@pytest.fixture(scope="module")
def axe_script(tmp_path_factory) -> Path:
    """axe-core's axe.min.js: from QA_AXE_DIR (an `npm install --prefix` folder, as .ci/run makes), or
    installed with npm into a temporary folder; the test is skipped when neither is possible."""
    import shutil
    import subprocess

    folder = os.environ.get("QA_AXE_DIR")
    if folder and (Path(folder) / "node_modules/axe-core/axe.min.js").is_file():
        return Path(folder) / "node_modules/axe-core/axe.min.js"
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("axe-core is not available: npm is not installed and QA_AXE_DIR is unset")
    prefix = tmp_path_factory.mktemp("axe")
    done = subprocess.run([npm, "install", "--prefix", str(prefix), f"axe-core@{AXE_VERSION}", "--no-audit",
                           "--no-fund"], capture_output=True, text=True, timeout=300)
    script = prefix / "node_modules/axe-core/axe.min.js"
    if done.returncode != 0 or not script.is_file():
        pytest.skip(f"npm could not install axe-core@{AXE_VERSION}: {done.stderr[-300:]}")
    return script


def test_axe_finds_no_serious_or_critical_violations_with_an_answer_shown(page, axe_script):
    _ask(page, COMPLAINTS)
    page.wait_for_function("document.querySelector('#qa-chat').innerText.includes('663')", timeout=TIMEOUT_MS)
    page.locator("#qa-sources mark").first.wait_for(state="visible")
    page.add_script_tag(path=str(axe_script))
    violations = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.length,
                                       targets: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")
    counts = {impact: sum(v["nodes"] for v in violations if v["impact"] == impact)
              for impact in ("critical", "serious", "moderate", "minor")}
    print(f"axe-core {AXE_VERSION} violations (elements) per impact: {counts}; rules: "
          + ", ".join(f"{v['id']}({v['impact']}, {v['nodes']})" for v in violations))
    bad = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not bad, bad


def test_sources_announce_updates_and_quotes_have_a_non_colour_cue(page):
    _ask(page, COMPLAINTS)
    page.locator("#qa-sources mark").first.wait_for(state="visible")
    assert page.locator("#qa-sources[aria-live='polite']").count() == 1
    decoration = page.locator("#qa-sources mark").first.evaluate("m => getComputedStyle(m).textDecorationLine")
    assert "underline" in decoration


def test_a_passage_opens_in_context_and_the_conversation_exports_from_the_page(page, tmp_path):
    import io

    from docx import Document

    _ask(page, COMPLAINTS)
    page.locator("#qa-sources mark").first.wait_for(state="visible")
    with page.context.expect_page() as opened:
        page.locator("#qa-sources a", has_text="Open in context").first.click()
    context_page = opened.value
    context_page.wait_for_load_state()
    marks = context_page.locator("mark").all_inner_texts()
    assert any("663 complaints" in m for m in marks), marks
    assert "Section at lines" in context_page.locator("main").inner_text()
    context_page.close()

    page.locator("#qa-export").click()
    page.locator("#qa-export-links a", has_text="Markdown").wait_for()
    with page.expect_download() as md:
        page.locator("#qa-export-links a", has_text="Markdown").click()
    md_text = Path(md.value.path()).read_text(encoding="utf-8")
    assert "663 complaints" in md_text and "CQC assessment of Birmingham City Council" in md_text
    with page.expect_download() as word:
        page.locator("#qa-export-links a", has_text="Word").click()
    doc = Document(io.BytesIO(Path(word.value.path()).read_bytes()))
    assert any(p.text.startswith("[1] CQC assessment of Birmingham City Council") for p in doc.paragraphs)


def test_asking_and_opening_a_source_work_from_the_keyboard(page):
    page.locator("#qa-question textarea").focus()
    page.keyboard.type(COMPLAINTS)
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#qa-chat').innerText.includes('663')", timeout=TIMEOUT_MS)
    # the answer clears the question box, and Gradio then hands focus back to it (autofocus), ready for a
    # follow-up; moving to the sources before that happens would race it
    page.wait_for_function("document.querySelector('#qa-question textarea').value === '' && "
                           "document.activeElement === document.querySelector('#qa-question textarea')",
                           timeout=TIMEOUT_MS)
    page.locator("#qa-sources mark").first.wait_for(state="visible")
    link = page.locator("#qa-sources a", has_text="Open in context").first
    # a late update of the page may still hand focus back to the question box once (seen in CI): the
    # link must take focus and keep it, so focus it again until it holds for a moment
    for _ in range(20):
        link.focus()
        page.wait_for_timeout(100)
        if page.evaluate("document.activeElement.textContent").startswith("Open in context"):
            break
    assert page.evaluate("document.activeElement.textContent").startswith("Open in context")
    with page.context.expect_page() as opened:
        page.keyboard.press("Enter")
    opened.value.wait_for_load_state()
    assert opened.value.locator("mark").count() >= 1
