"""`qa mcp` end to end: the SDK's own stdio client starts the server, lists the tools, calls them."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import pytest

pytest.importorskip("mcp")
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


async def _session_run(index_dir: Path, steps):
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_LLM_")}
    params = StdioServerParameters(command=sys.executable, args=["-m", "qa", "mcp"], cwd=str(ROOT),
                                   env=dict(env, QA_INDEX_DIR=str(index_dir), HF_HUB_OFFLINE="1"))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            return await steps(session)


def _payload(result) -> dict:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        data = result.structured_content
        return data.get("result", data) if set(data) == {"result"} else data
    return json.loads(result.content[0].text)


def test_mcp_client_lists_the_tools_and_gets_cited_passages_and_an_abstention(retriever):
    async def steps(session):
        tools = {t.name: t for t in (await session.list_tools()).tools}
        search = await session.call_tool("search_reports", {"query": "DoLS backlog", "k": 3,
                                                            "council": "Birmingham"})
        answered = await session.call_tool("ask", {"question": "How many complaints about adult social care "
                                                               "did Birmingham receive?"})
        abstained = await session.call_tool("ask", {"question": "What is the capital of France?"})
        too_long = await session.call_tool("search_reports", {"query": "x" * 5000})
        bad_council = await session.call_tool("search_reports", {"query": "care", "council": "Leeds"})
        return tools, search, answered, abstained, too_long, bad_council

    tools, search, answered, abstained, too_long, bad_council = anyio.run(_session_run,
                                                                          retriever.settings.index_dir, steps)
    assert set(tools) == {"search_reports", "ask"}
    for tool in tools.values():
        assert tool.annotations.read_only_hint is True and tool.annotations.destructive_hint is False
        assert tool.annotations.idempotent_hint is True and tool.annotations.open_world_hint is False
    props = tools["search_reports"].input_schema["properties"]
    assert props["query"]["maxLength"] == 2000 and props["k"]["maximum"] == 20
    assert set(props) == {"query", "k", "council", "year"}
    assert set(tools["ask"].input_schema["properties"]) == {"question", "council", "report"}

    passages = _payload(search)["passages"]
    assert len(passages) == 3 and {p["council"] for p in passages} == {"Birmingham City Council"}
    assert all(p["citation"].startswith(p["title"]) for p in passages)
    assert any("backlog" in p["text"] for p in passages)

    answer = _payload(answered)
    assert answer["abstained"] is False and "663" in answer["answer"] and answer["citations"]
    assert answer["citations"][0]["title"] == "CQC assessment of Birmingham City Council"
    no = _payload(abstained)
    assert no["abstained"] is True and no["citations"] == []
    assert no["answer"].startswith("I could not find this in these reports")

    assert too_long.is_error  # bounded input, refused by the schema before the library runs
    assert bad_council.is_error and "Known councils" in bad_council.content[0].text


def test_http_mode_refuses_other_addresses_without_a_token():
    from qa.mcp_server import check_http_binding

    assert check_http_binding("127.0.0.1", "") == "" and check_http_binding("::1", "") == ""
    assert "QA_MCP_TOKEN" in check_http_binding("0.0.0.0", "")
    assert check_http_binding("0.0.0.0", "s3cret") == ""
