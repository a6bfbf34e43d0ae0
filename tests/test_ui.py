"""The local page (`mem0-mcp ui`): its guard, its forms over HTTP, and its views in headless Chromium.

The browser tests drive Debian's `chromium` over the DevTools pipe (tests/support/chromium.py)
and check a screenshot of each view (the size asked for, not blank) and the texts in its DOM.
With MEM0_MCP_UI_SCREENSHOTS=<folder> they also write the screenshots there (docs/ for the README).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.testclient import TestClient

from mem0_mcp.cli.main import main as cli_main
from mem0_mcp.engine.browse import deleted_memories, list_scopes
from mem0_mcp.engine.memory import Memory
from mem0_mcp.errors import InvalidInputError
from mem0_mcp.models import Scope
from mem0_mcp.ui.app import PageConfig, create_app
from mem0_mcp.ui.filters import parse_filter, parse_metadata
from mem0_mcp.ui.graph_svg import layout
from tests.support.chromium import MISSING, Browser, find_chromium, png_colours, png_size
from tests.support.engine import FakeEmbedder, make_settings
from tests.support.server import MODEL_CACHE

SECRET = "test-secret-123"
TESTER = Scope(user_id="tester")


def seed(memory: Memory) -> dict[str, str]:
    """A small store: three memories of the default user, one of bob, a graph for the tester."""
    ids = {}
    for key, text, meta in (
        ("tea", "Alice likes green tea in the morning", {"topic": "food"}),
        ("job", "Alice works at Acme as an engineer", {"topic": "work"}),
        ("move", "Alice moved to Lisbon in May", {"topic": "home"}),
    ):
        ids[key] = memory.add(text, user_id="tester", metadata=meta, infer=False).results[0].id
    ids["bob"] = memory.add("Bob plays chess on Sundays", user_id="bob", infer=False).results[0].id
    if memory.graph is not None:
        memory.graph.add_relation("Alice", "works at", "Acme", TESTER, destination_type="organization")
        memory.graph.add_relation("Alice", "lives in", "Lisbon", TESTER, destination_type="place")
        memory.graph.add_relation("Alice", "likes", "green tea", TESTER)
    return ids


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[Memory]:
    mem = Memory(make_settings(tmp_path / "data", graph_enabled=True), embedder=FakeEmbedder())
    yield mem
    mem.close()


@pytest.fixture
def client(memory: Memory) -> TestClient:
    config = PageConfig(memory=memory, secret=SECRET, default_scope=TESTER, allowed_hosts=["testserver"])
    return TestClient(create_app(config))


# ---------------------------------------------------------------------------- the guard
def test_requests_without_the_secret_are_refused(memory: Memory, client: TestClient) -> None:
    ids = seed(memory)
    for path in ("/", "/wrong/", f"/{SECRET}x/", f"/x/{SECRET}/", "/graph", f"/memory/{ids['tea']}"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "secret" in response.text
    assert client.get(f"/{SECRET}/").status_code == 200
    # Another Host (a DNS-rebinding page) is refused even with the secret.
    assert client.get(f"/{SECRET}/", headers={"host": "evil.example:80"}).status_code == 403
    # A form without the secret (CSRF) changes nothing.
    for form in ({}, {"csrf": "guess", "text": "changed"}):
        response = client.post(f"/{SECRET}/memory/{ids['tea']}/edit", data=form)
        assert response.status_code == 403
        assert client.post(f"/{SECRET}/memory/{ids['tea']}/delete", data=form).status_code == 403
    assert memory.get(ids["tea"]).memory == "Alice likes green tea in the morning"
    page = client.get(f"/{SECRET}/")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"


# ---------------------------------------------------------------------------- lists and search
def test_the_page_opens_on_the_default_user_with_every_scope_in_the_picker(
    memory: Memory, client: TestClient
) -> None:
    seed(memory)
    html = client.get(f"/{SECRET}/").text
    assert "Alice works at Acme" in html and "Bob plays chess" not in html
    assert "3 memories, newest first" in html
    assert re.search(r'<option value="user_id=tester" selected>user_id=tester \(3\)', html)
    assert '<option value="user_id=bob" >user_id=bob (1)' in html
    # The picker's value opens that scope.
    bob = client.get(f"/{SECRET}/", params={"scope": "user_id=bob"}).text
    assert "Bob plays chess" in bob and "Alice" not in bob.split("<main>")[1]
    assert [(s.label, s.memories) for s in list_scopes(memory.storage)] == [
        ("user_id=tester", 3),
        ("user_id=bob", 1),
    ]


def test_search_and_metadata_filters(memory: Memory, client: TestClient) -> None:
    seed(memory)
    found = client.get(f"/{SECRET}/", params={"q": "green tea"}).text
    assert "results for “green tea”" in found
    assert found.index("Alice likes green tea") < found.index("Alice works at Acme") or "Acme" not in found
    filtered = client.get(f"/{SECRET}/", params={"filter": "topic=work"}).text
    assert "Alice works at Acme" in filtered and "green tea" not in filtered
    as_json = client.get(f"/{SECRET}/", params={"filter": '{"topic": {"in": ["home", "food"]}}'}).text
    assert "Lisbon" in as_json and "green tea" in as_json and "Acme" not in as_json
    both = client.get(f"/{SECRET}/", params={"q": "Alice", "filter": "topic=home"}).text
    assert "Lisbon" in both and "Acme" not in both
    bad = client.get(f"/{SECRET}/", params={"filter": "just words"})
    assert bad.status_code == 400 and "key=value" in bad.text


def test_filter_and_metadata_boxes() -> None:
    assert parse_filter("") is None
    assert parse_filter("topic=food, priority=2, done=true") == {"topic": "food", "priority": 2, "done": True}
    assert parse_filter('{"priority": {"gte": 2}}') == {"priority": {"gte": 2}}
    assert parse_metadata("") == {}
    for bad in ("[1]", "{oops"):
        with pytest.raises(InvalidInputError) as info:
            parse_metadata(bad)
        assert info.value.field == "metadata"
    with pytest.raises(InvalidInputError):
        parse_filter("{not json")


# ---------------------------------------------------------------------------- changes
def test_an_edit_is_recorded_as_made_by_a_person_and_can_be_undone(
    memory: Memory, client: TestClient
) -> None:
    ids = seed(memory)
    form = client.get(f"/{SECRET}/memory/{ids['tea']}/edit").text
    assert f'name="csrf" value="{SECRET}"' in form and "Alice likes green tea in the morning" in form
    saved = client.post(
        f"/{SECRET}/memory/{ids['tea']}/edit",
        data={"csrf": SECRET, "text": "Alice prefers black tea", "metadata": '{"topic": "drink"}'},
    )
    assert saved.status_code == 200 and "Saved." in saved.text
    item = memory.get(ids["tea"])
    assert (item.memory, item.metadata) == ("Alice prefers black tea", {"topic": "drink"})
    assert [(e.event, e.source) for e in memory.history(ids["tea"])] == [("ADD", "api"), ("UPDATE", "person")]
    # The history view shows the old version, crossed out, and offers the undo.
    assert (
        '<span class="old">Alice likes green tea in the morning</span> → Alice prefers black tea'
        in saved.text
    )
    assert "Undo the update" in saved.text
    undone = client.post(f"/{SECRET}/memory/{ids['tea']}/restore", data={"csrf": SECRET})
    assert "Undone: the update." in undone.text
    assert memory.get(ids["tea"]).memory == "Alice likes green tea in the morning"
    assert memory.history(ids["tea"])[-1].source == "person"
    # Bad metadata: the form comes back with the error and what was typed; nothing is written.
    bad = client.post(
        f"/{SECRET}/memory/{ids['tea']}/edit", data={"csrf": SECRET, "text": "typed", "metadata": "[1]"}
    )
    assert bad.status_code == 400 and "metadata: must be a JSON object" in bad.text and "typed" in bad.text
    assert len(memory.history(ids["tea"])) == 3
    same = client.post(
        f"/{SECRET}/memory/{ids['tea']}/edit",
        data={"csrf": SECRET, "text": "Alice likes green tea in the morning", "metadata": '{"topic":"food"}'},
    )
    assert "Nothing changed." in same.text and len(memory.history(ids["tea"])) == 3


def test_delete_asks_first_and_a_deleted_memory_can_be_restored(memory: Memory, client: TestClient) -> None:
    ids = seed(memory)
    confirm = client.get(f"/{SECRET}/memory/{ids['job']}/delete")
    assert "Delete this memory?" in confirm.text and "Alice works at Acme" in confirm.text
    assert memory.get(ids["job"]).memory.startswith("Alice works")  # a GET never deletes
    gone = client.post(f"/{SECRET}/memory/{ids['job']}/delete", data={"csrf": SECRET})
    assert "It can be restored from Deleted." in gone.text and "Alice works at Acme</a>" not in gone.text
    assert memory.history(ids["job"])[-1].source == "person"
    assert [e.memory_id for e in deleted_memories(memory.storage, TESTER)] == [ids["job"]]
    assert deleted_memories(memory.storage, Scope(user_id="bob")) == []
    listed = client.get(f"/{SECRET}/", params={"view": "deleted"}).text
    assert f'data-id="{ids["job"]}"' in listed and "Alice works at Acme" in listed
    history = client.get(f"/{SECRET}/memory/{ids['job']}").text
    assert 'class="tag deleted"' in history and ">Restore<" in history
    back = client.post(f"/{SECRET}/memory/{ids['job']}/restore", data={"csrf": SECRET})
    assert "Undone: the delete." in back.text
    assert memory.get(ids["job"]).memory == "Alice works at Acme as an engineer"
    assert deleted_memories(memory.storage, TESTER) == []


def test_unknown_memory_is_a_404_page(client: TestClient) -> None:
    response = client.get(f"/{SECRET}/memory/no-such-id")
    assert response.status_code == 404 and "no-such-id" in response.text


# ---------------------------------------------------------------------------- graph
def test_the_graph_is_drawn_and_downloads_as_one_html_file(memory: Memory, client: TestClient) -> None:
    seed(memory)
    page = client.get(f"/{SECRET}/graph").text
    assert "4 entities, 3 relations" in page
    assert "<svg" in page and ">Acme</text>" in page and ">works_at</text>" in page
    download = client.get(f"/{SECRET}/graph.html")
    assert download.headers["content-disposition"] == 'attachment; filename="mem0-graph-tester.html"'
    assert (
        "<svg" in download.text
        and "<script" not in download.text
        and "http://" not in download.text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )


def test_graph_off_says_so(tmp_path: Path) -> None:
    mem = Memory(make_settings(tmp_path), embedder=FakeEmbedder())
    try:
        config = PageConfig(memory=mem, secret=SECRET, default_scope=TESTER, allowed_hosts=["testserver"])
        page = TestClient(create_app(config)).get(f"/{SECRET}/graph").text
    finally:
        mem.close()
    assert "The graph is off." in page and "MEM0_MCP_GRAPH_ENABLED=true" in page


def test_layout_is_deterministic_and_inside_the_box() -> None:
    edges = [(0, 1), (1, 2), (2, 0), (3, 4)]
    first, second = layout(6, edges), layout(6, edges)
    assert (first == second).all()
    assert first.min() >= 0 and first.max() <= 1
    assert len({(round(x, 3), round(y, 3)) for x, y in first}) == 6  # no two nodes on one spot


def test_graph_export_html_from_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    mem = Memory(make_settings(data, graph_enabled=True), embedder=FakeEmbedder())
    seed(mem)
    mem.close()
    monkeypatch.setenv("MEM0_MCP_DATA_DIR", str(data))
    out = tmp_path / "graph.html"
    assert cli_main(["graph", "export", "--format", "html", "--user-id", "tester", "--out", str(out)]) == 0
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and "Memory graph of user_id=tester" in html
    assert ">Lisbon</text>" in html and "<script" not in html


# ---------------------------------------------------------------------------- in a browser
@pytest.fixture
def served(memory: Memory) -> Iterator[str]:
    """The page on a real port (uvicorn in a thread); yields its address."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = PageConfig(
        memory=memory, secret=SECRET, default_scope=TESTER, allowed_hosts=[f"127.0.0.1:{port}"]
    )
    server = uvicorn.Server(uvicorn.Config(create_app(config), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/{SECRET}/"
    server.should_exit = True
    thread.join(10)


def check_shot(browser: Browser, name: str, tmp_path: Path) -> None:
    """A screenshot of the view: the viewport's size, not blank; copied for the README on request."""
    data = browser.screenshot(tmp_path / f"ui-{name}.png").read_bytes()
    assert png_size(data) == (browser.width, browser.height), name
    assert png_colours(data) > 20, f"the {name} screenshot is blank"
    target = os.environ.get("MEM0_MCP_UI_SCREENSHOTS")
    if target:
        Path(target, f"ui-{name}.png").write_bytes(data)


@pytest.mark.slow
def test_the_views_in_headless_chromium(memory: Memory, served: str, tmp_path: Path) -> None:
    if find_chromium() is None:
        pytest.skip(MISSING)
    ids = seed(memory)
    memory.update(ids["move"], text="Alice moved to Porto in June", source="agent")
    with Browser(width=1100, height=640) as browser:
        browser.goto(served)
        assert "Alice likes green tea in the morning" in browser.text("#memories")
        assert "Bob plays chess" not in browser.dom()
        check_shot(browser, "list", tmp_path)

        # Search: typed into the box and sent with Enter's form submit, as a person does.
        browser.fill("#q", "tea morning")
        browser.act_and_wait("document.getElementById('search').requestSubmit()")
        assert "q=tea+morning" in browser.url()
        rows = browser.text("#memories")
        assert rows.index("Alice likes green tea") < (rows.index("Acme") if "Acme" in rows else len(rows))
        check_shot(browser, "search", tmp_path)

        # Edit: the form, then save; the history view shows both versions.
        browser.goto(f"{served}memory/{ids['tea']}/edit")
        browser.fill("#text", "Alice likes green tea, no sugar")
        check_shot(browser, "edit", tmp_path)
        browser.click("#save")
        assert "Saved." in browser.text("main")
        assert memory.get(ids["tea"]).memory == "Alice likes green tea, no sugar"

        browser.goto(f"{served}memory/{ids['move']}")
        history = browser.text("#history")
        assert "Alice moved to Lisbon in May" in history and "Alice moved to Porto in June" in history
        check_shot(browser, "history", tmp_path)

        # Delete asks first; the confirmation deletes; Deleted lists it.
        browser.goto(f"{served}memory/{ids['job']}")
        browser.click("a[href$='/delete']")
        assert "Delete this memory?" in browser.text("main")
        browser.click("#confirm")
        assert "It can be restored from Deleted." in browser.text("main")
        browser.goto(f"{served}?view=deleted")
        assert "Alice works at Acme as an engineer" in browser.text("#deleted")

        # The scope picker switches scope at once (its small script).
        browser.goto(served)
        browser.act_and_wait(
            "const s = document.getElementById('scope'); s.value = 'user_id=bob';"
            "s.dispatchEvent(new Event('change'))"
        )
        assert "Bob plays chess on Sundays" in browser.text("#memories")

        browser.goto(f"{served}graph")
        assert browser.evaluate("document.querySelectorAll('svg.graph g.node').length") == 4
        assert "Lisbon" in browser.text("svg.graph")
        check_shot(browser, "graph", tmp_path)


@pytest.mark.slow
def test_the_ui_command_prints_its_address_and_guards_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEM0_MCP_")}
    env.update(MEM0_MCP_DATA_DIR=str(tmp_path / "data"), MEM0_MCP_LLM_PROVIDER="none", PYTHONPATH=os.getcwd())
    if MODEL_CACHE.is_dir():
        env["MEM0_MCP_MODEL_CACHE_DIR"] = str(MODEL_CACHE)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mem0_mcp.cli.main", "ui", "--no-browser", "--user-id", "alice"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/[\w-]{20,}/", url), url
        page = httpx.get(url, timeout=30)
        assert page.status_code == 200 and "No memories in this scope yet." in page.text
        assert "user_id=alice" in page.text
        origin = url.rsplit("/", 2)[0]
        assert httpx.get(origin + "/", timeout=10).status_code == 403
        assert httpx.get(origin + "/not-the-secret/", timeout=10).status_code == 403
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_busy_port_is_one_clean_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MEM0_MCP_DATA_DIR", str(tmp_path))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert cli_main(["ui", "--no-browser", "--port", str(port)]) == 1
    err = capsys.readouterr()
    assert err.out == "" and f"mem0-mcp ui: --port {port}: " in err.err and "choose another port" in err.err
