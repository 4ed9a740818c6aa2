"""Passages in context and conversation export, over loopback against a served app (issue 10, item 4)."""

from __future__ import annotations

import html
import io
import json
import re

import httpx
import pytest
from served_app import free_port, serve

pytestmark = pytest.mark.slow

COMPLAINTS = "How many complaints about adult social care did Birmingham receive?"


@pytest.fixture(scope="module")
def served(assistant, tmp_path_factory):
    from qa.app_settings import AppSettings

    settings = AppSettings(port=free_port(), feedback_log=tmp_path_factory.mktemp("ctx") / "fb.jsonl")
    demo, url = serve(assistant, settings)
    yield demo, url
    demo.close()


def _chat(url: str, question: str):
    from gradio_client import Client

    client = Client(url, verbose=False)
    return client, client.predict(question, "", "", api_name="/chat")


def _links(sources_html: str, pattern: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(pattern, sources_html)]


def test_a_cited_passage_opens_in_its_section_with_the_quote_marked(served, assistant):
    demo, url = served
    _, (_, _, sources) = _chat(url, COMPLAINTS)
    links = _links(sources, r'href="(qa/passage/[^"]+)"')
    assert links, sources[:500]
    reply = httpx.get(f"{url}/{links[0]}", timeout=30)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/html")
    page = reply.text
    marks = re.findall(r"<mark>(.*?)</mark>", page, flags=re.S)
    assert any("663 complaints" in m for m in marks), marks
    assert "quoted: " in page  # the cue that is not only colour
    assert re.search(r"Section at (lines \d+-\d+|pages? \S+) of the report", page)
    # the whole section: longer than the cited passage alone
    answer = assistant.ask(COMPLAINTS)
    assert len(re.sub(r"<[^>]+>", "", page)) > len(answer.citations[0].text)
    assert httpx.get(f"{url}/qa/passage/no-such-chunk", timeout=30).status_code == 404


def test_report_text_in_a_passage_page_is_escaped(served, assistant):
    from qa.context import Section, passage_page

    _, url = served
    # a quote sent in the link is shown escaped, whether or not it is found
    reply = httpx.get(f"{url}/qa/passage/{assistant.retriever.index.chunks[0].chunk_id}",
                      params={"q": "<script>window.__x=1</script>"}, timeout=30)
    assert reply.status_code == 200
    assert "<script>" not in reply.text and "&lt;script&gt;window.__x=1&lt;/script&gt;" in reply.text
    # a report whose text holds markup: escaped, and the quote still marked
    section = Section(text="Intro. The <script>alert(1)</script> line & more.", title="T <b>", council="C",
                      date_text="1 May 2024", path=("A > B",), location="lines 3-9", passage="x")
    page = passage_page(section, ["The <script>alert(1)</script> line"])
    assert "<script>" not in page and "<b>" not in page
    assert "<mark>The &lt;script&gt;alert(1)&lt;/script&gt; line</mark>" in page


def test_the_conversation_exports_as_markdown_and_word(served):
    from docx import Document

    _, url = served
    client, _ = _chat(url, COMPLAINTS)
    links = client.predict(api_name="/export")
    md_link = _links(links, r'href="(qa/export/[^"]+\.md)"')[0]
    docx_link = _links(links, r'href="(qa/export/[^"]+\.docx)"')[0]
    md = httpx.get(f"{url}/{md_link}", timeout=30)
    assert md.status_code == 200 and "attachment" in md.headers["content-disposition"]
    text = md.text
    assert "## Question 1" in text and "663 complaints" in text
    assert "CQC assessment of Birmingham City Council" in text and "\\[1\\]" in text
    assert "    > " in text  # the quoted sentences under their citation
    word = httpx.get(f"{url}/{docx_link}", timeout=30)
    assert word.status_code == 200
    doc = Document(io.BytesIO(word.content))
    paragraphs = [p.text for p in doc.paragraphs]
    assert any(p.startswith("[1] CQC assessment of Birmingham City Council") for p in paragraphs), paragraphs
    assert any("663 complaints" in p for p in paragraphs if p.startswith("[1]") is False)
    assert httpx.get(f"{url}/qa/export/{'x' * 32}.md", timeout=30).status_code == 404


def test_export_before_any_question_says_so(served):
    from gradio_client import Client

    _, url = served
    assert "nothing to export" in Client(url, verbose=False).predict(api_name="/export")


def test_routes_need_the_login_when_login_is_on(assistant, tmp_path):
    from qa.app_settings import AppSettings

    settings = AppSettings(port=free_port(), user="staff", password="correct horse",
                           feedback_log=tmp_path / "fb.jsonl")
    demo, url = serve(assistant, settings)
    try:
        chunk = assistant.retriever.index.chunks[0].chunk_id
        assert httpx.get(f"{url}/qa/passage/{chunk}", timeout=30).status_code == 401
        with httpx.Client(base_url=url, timeout=30) as c:
            assert c.post("/login", data={"username": "staff", "password": "correct horse"}).status_code == 200
            reply = c.get(f"/qa/passage/{chunk}")
            assert reply.status_code == 200 and "<mark>" in reply.text
    finally:
        demo.close()


def test_stitch_keeps_an_overlap_once():
    from qa.context import stitch

    assert stitch(["alpha beta gamma delta epsilon", "gamma delta epsilon zeta"], min_overlap=5) == (
        "alpha beta gamma delta epsilon zeta")
    assert stitch(["one", "two"], min_overlap=5) == "one\n\ntwo"
    assert json.dumps(stitch([])) == '""'
