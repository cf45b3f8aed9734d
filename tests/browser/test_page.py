"""The chat page at ``/`` in a real Chromium: a question's tokens arrive in order, tool calls
form and report progress, sub-agents are labelled, runs stop, interrupted tool calls are
reviewed, threads are kept, and a stream cut by the network goes on without a lost or repeated
token."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from rxagent._demo import weather_script

from .agents import counted_words
from .conftest import ProxyThread

RECORD = """() => {
  const log = document.getElementById("log");
  window.seen = [];
  new MutationObserver(() => {
    const texts = {};
    for (const node of log.querySelectorAll(".run .msg.ai > .text")) {
      texts[node.parentElement.dataset.id] = node.textContent;
    }
    for (const node of log.querySelectorAll(".run .call .args")) {
      texts["args:" + node.closest(".call").dataset.call] = node.textContent;
    }
    window.seen.push(texts);
  }).observe(log, { subtree: true, childList: true, characterData: true });
}"""


def open_agent(page: Page, url: str, agent: str) -> None:
    page.goto(url + "/")
    expect(page.get_by_label("Agent")).to_be_enabled()
    page.get_by_label("Agent").select_option(agent)
    page.get_by_role("button", name="New thread").click()


def ask(page: Page, question: str) -> None:
    box = page.get_by_label("Message")
    box.fill(question)
    box.press("Enter")  # the keyboard sends


def runs_ended(page: Page, count: int, timeout: float = 30_000) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('.run[data-status]').length >= n", arg=count,
        timeout=timeout)


def growth(seen: list[dict[str, str]], key: str) -> list[str]:
    """The successive texts of one message (or a call's arguments) as the page showed them."""
    texts: list[str] = []
    for snapshot in seen:
        text = snapshot.get(key)
        if text is not None and (not texts or texts[-1] != text):
            texts.append(text)
    return texts


def assert_grew_in_order(texts: list[str], final: str) -> None:
    assert texts[-1] == final
    for before, after in pairwise(texts):
        assert after.startswith(before), (before, after)  # only ever appended to, in order


def answer_of(page: Page, run: int = -1) -> str:
    texts = page.locator(".run").nth(run).locator(":scope > .items > .msg.ai > .text")
    return str(texts.last.text_content())


def last_answer(page: Page) -> str:
    return str(page.locator("#log .msg.ai > .text").last.text_content())


def thread_of(page: Page) -> str:
    hash_ = page.evaluate("location.hash")
    return dict(part.split("=", 1) for part in hash_[1:].split("&"))["thread"]


def test_a_question_streams_its_tool_call_progress_and_tokens_in_order(
    page: Page, url: str
) -> None:
    open_agent(page, url, "demo")
    page.evaluate(RECORD)
    ask(page, "What is the weather in SF?")
    runs_ended(page, 1)
    call = page.locator(".call")
    expect(call.locator(".name")).to_have_text("get_weather")
    expect(call.locator(".progress li")).to_have_text([
        "Looking up data for city: San Francisco", "Acquired data for city: San Francisco"])
    expect(call.locator(".result .text")).to_have_text("It's always sunny in San Francisco!")
    expect(page.locator(".run .steps li")).to_have_text(["model", "tools", "model"])
    seen: list[dict[str, str]] = page.evaluate("window.seen")
    # The call's arguments were shown as they formed, fragment by fragment.
    arguments = growth(seen, "args:call_weather_1")
    assert_grew_in_order(arguments, '{"city":"San Francisco"}')
    assert len(arguments) >= 3, arguments
    # The answer's tokens arrived in order, over several updates.
    answer_id = page.locator(".run .msg.ai").last.get_attribute("data-id")
    tokens = growth(seen, str(answer_id))
    expected = weather_script()[1]
    assert_grew_in_order(tokens, str(expected))
    assert len(tokens) >= 3, tokens
    expect(page.get_by_role("status")).to_have_text("Done.")
    expect(page.locator("#log")).to_have_attribute("aria-live", "polite")


def test_a_sub_agent_streams_under_its_tool_call_labelled_by_namespace(
    page: Page, url: str
) -> None:
    open_agent(page, url, "team")
    ask(page, "hello")
    runs_ended(page, 1)
    nested = page.locator('.call[data-call="call_help_1"] .nested .msg.sub')
    expect(nested.locator(".who")).to_have_text("helper · tools:call_help_1")
    expect(nested.locator(".text")).to_have_text("Helper heard: hello")
    expect(page.locator(".run .steps li")).to_have_text(
        ["model", "helper \u203a model", "tools", "model"])
    assert answer_of(page) == "The helper says: Helper heard: hello"


def test_stop_cancels_the_run(page: Page, url: str) -> None:
    open_agent(page, url, "counter")
    ask(page, "count 3000")
    page.wait_for_function(
        "() => (document.querySelector('.run .msg.ai .text')?.textContent || '').length > 20")
    page.get_by_role("button", name="Stop").click()
    runs_ended(page, 1)
    expect(page.locator(".run")).to_have_attribute("data-status", "interrupted")
    expect(page.get_by_role("status")).to_have_text("Stopped.")
    full = "".join(counted_words(3000))
    shown = answer_of(page)
    assert full.startswith(shown) and len(shown) < len(full)
    runs = httpx.get(f"{url}/threads/{thread_of(page)}/runs").json()
    assert [run["status"] for run in runs] == ["interrupted"]
    expect(page.get_by_role("button", name="Send")).to_be_enabled()


def review(page: Page) -> Any:
    form = page.get_by_role("form", name="Review")
    expect(form).to_be_visible()
    return form


def test_approve_an_interrupted_tool_call(page: Page, url: str) -> None:
    open_agent(page, url, "mail")
    ask(page, "hello")
    form = review(page)
    expect(page.get_by_role("status")).to_have_text("Waiting for your review.")
    expect(form.get_by_role("group", name="Tool call: send_email")).to_be_visible()
    assert json.loads(form.get_by_label("Arguments (JSON)").input_value()) == {
        "to": "ann@example.com", "body": "hello"}
    approve = form.get_by_role("radio", name="Approve")
    expect(approve).to_be_checked()
    # By keyboard: the review takes the focus, on its decision; Tab, Tab, Enter sends it.
    expect(approve).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(form.get_by_role("button", name="Send decision")).to_be_focused()
    page.keyboard.press("Enter")
    runs_ended(page, 2)
    expect(page.locator(".call .result .text")).to_have_text("sent to ann@example.com: hello")
    assert answer_of(page) == "Result: sent to ann@example.com: hello"
    # The decision shows in the conversation, as what the person said.
    expect(page.locator(".run").nth(1).locator(".msg.human .text")).to_have_text(
        "Approve: send_email")
    expect(form).to_have_count(0)


def test_edit_or_reject_an_interrupted_tool_call(page: Page, url: str) -> None:
    open_agent(page, url, "mail")
    ask(page, "first")
    form = review(page)
    edited = '{"to": "bob@example.com", "body": "edited"}'
    form.get_by_label("Arguments (JSON)").fill(edited)
    # Editing the arguments chooses Edit.
    expect(form.get_by_role("radio", name="Edit")).to_be_checked()
    form.get_by_role("button", name="Send decision").click()
    runs_ended(page, 2)
    expect(page.locator(".call .result .text")).to_contain_text(
        "sent to bob@example.com: edited")

    ask(page, "second")
    form = review(page)
    form.get_by_role("radio", name="Reject").check()
    form.get_by_label("Message to the agent").fill("not now")
    form.get_by_role("button", name="Send decision").click()
    runs_ended(page, 4)
    expect(page.locator(".call .result .text").last).to_have_text(
        "User rejected the tool call for `send_email` with reason: not now")
    expect(page.locator(".call").last).to_have_class("call failed")


def test_a_dropped_connection_resumes_without_a_lost_or_repeated_token(
    page: Page, url: str
) -> None:
    question = "count 300"
    open_agent(page, url, "counter")
    ask(page, question)
    runs_ended(page, 1)
    uncut = answer_of(page)
    assert uncut == "".join(counted_words(300))

    # A token's frame is about 800 bytes: every stream (the run's, then each join) is cut after
    # 20,000 bytes, mid-frame, a dozen times over the run.
    with ProxyThread(url, 20_000) as proxy:
        open_agent(page, proxy.url, "counter")
        page.evaluate("""() => {
          window.statuses = [];
          new MutationObserver(() => window.statuses.push(
            document.getElementById("status").textContent
          )).observe(document.getElementById("status"), { childList: true, subtree: true });
        }""")
        ask(page, question)
        runs_ended(page, 1, timeout=60_000)
    assert proxy.proxy.cuts >= 5, proxy.proxy.cuts
    assert "Connection lost: reconnecting…" in page.evaluate("window.statuses")
    expect(page.locator(".run")).to_have_attribute("data-status", "success")
    assert answer_of(page) == uncut


def test_a_100000_token_answer_is_written_to_the_page_once_per_frame(
    page: Page, url: str
) -> None:
    tokens = 100_000
    open_agent(page, url, "flood")
    # Every write to the answer's text is a mutation record: count them.
    page.evaluate("""() => {
      window.writes = 0;
      new MutationObserver((records) => { window.writes += records.length; })
        .observe(document.getElementById("log"), { subtree: true, characterData: true });
    }""")
    ask(page, f"count {tokens}")
    runs_ended(page, 1, timeout=240_000)
    expect(page.locator(".run")).to_have_attribute("data-status", "success")
    assert answer_of(page) == "".join(counted_words(tokens))
    writes = page.evaluate("window.writes")
    assert 0 < writes < tokens / 20, writes  # coalesced, not a write per token
    page.reload()  # and from the thread's state, whole
    expect(page.locator("#log .msg.human .text")).to_have_text([f"count {tokens}"])
    assert last_answer(page) == "".join(counted_words(tokens))


def test_threads_are_kept_listed_switched_and_rejoined_mid_run(page: Page, url: str) -> None:
    open_agent(page, url, "counter")
    ask(page, "count 5")
    runs_ended(page, 1)
    first = thread_of(page)
    page.get_by_role("button", name="New thread").click()
    expect(page.locator("#log")).to_be_empty()
    ask(page, "count 7")
    runs_ended(page, 1)
    threads = page.get_by_role("navigation", name="Threads").get_by_role("listitem")
    expect(threads.first).to_have_text("count 7")  # the latest first
    expect(threads.filter(has_text="count 5")).to_have_count(1)

    answers = page.locator("#log .msg.ai > .text")
    threads.filter(has_text="count 5").get_by_role("button").click()
    expect(page.locator("#log .msg.human .text")).to_have_text(["count 5"])
    expect(answers.last).to_have_text("".join(counted_words(5)))
    assert thread_of(page) == first
    expect(threads.filter(has_text="count 5").get_by_role("button")).to_have_attribute(
        "aria-current", "true")
    page.reload()  # the address keeps the thread
    expect(page.locator("#log .msg.human .text")).to_have_text(["count 5"])

    # Away from a thread while its run goes on, and back: the page joins the run from its
    # first event, and the text already in the thread's state is not shown twice.
    ask(page, "count 150")
    page.wait_for_function(
        "() => (document.querySelector('.run .msg.ai .text')?.textContent || '').length > 30")
    threads.filter(has_text="count 7").get_by_role("button").click()
    expect(page.locator("#log .msg.human .text")).to_have_text(["count 7"])
    threads.filter(has_text="count 5").get_by_role("button").click()
    # (Until the thread's view replaces it, the page still shows "count 7" and its ended run.)
    expect(page.locator("#log .msg.human .text")).to_have_text(["count 5", "count 150"])
    expect(answers.last).to_have_text("".join(counted_words(150)))
    runs_ended(page, 1)


def test_on_a_phone_the_page_fits_and_the_threads_fold_away(browser: Any, url: str) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True)
    try:
        page = context.new_page()
        open_agent(page, url, "demo")
        ask(page, "What is the weather in SF?")
        runs_ended(page, 1)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        threads = page.get_by_role("navigation", name="Threads")
        expect(threads).to_be_hidden()
        toggle = page.get_by_role("button", name="Threads")
        toggle.click()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        expect(threads).to_be_visible()
        threads.get_by_role("button").first.click()  # picking a thread folds the list again
        expect(threads).to_be_hidden()
        expect(toggle).to_have_attribute("aria-expanded", "false")
        for control in ("Message", "Agent"):
            box = page.get_by_label(control).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    finally:
        context.close()


def test_the_event_parser_gives_the_same_events_however_the_bytes_are_split(
    page: Page, url: str
) -> None:
    page.goto(url + "/")
    events = page.evaluate("""async () => {
      const { SSEDecoder } = await import("./_page/sse.js");
      const text = "event: metadata\\r\\ndata: {\\"run_id\\":\\"r\\"}\\r\\nid: 1\\r\\n\\r\\n"
        + ": heartbeat\\r\\n\\r\\n"
        + "event: messages\\r\\ndata: [\\"a\\u00e9\\u6f22\\"]\\r\\nid: 2\\r\\n\\r\\n"
        + "event: custom\\ndata: line one\\ndata: line two\\nid: 3\\n\\n"
        + "event: updates\\rdata:{}\\rid: 4\\r\\r"
        + "event: messages\\r\\ndata: [\\"cut\\"]\\r\\nid: 5\\r\\n";  // never ended: no event
      const whole = new SSEDecoder().push(text);
      const runs = [];
      for (let at = 0; at <= text.length; at++) {
        const decoder = new SSEDecoder();
        runs.push([...decoder.push(text.slice(0, at)), ...decoder.push(text.slice(at))]);
      }
      const decoder = new SSEDecoder();
      runs.push([...text].flatMap((c) => decoder.push(c)));
      return { whole, same: runs.every((r) => JSON.stringify(r) === JSON.stringify(whole)) };
    }""")
    assert events["same"]
    assert events["whole"] == [
        {"event": "metadata", "data": '{"run_id":"r"}', "id": "1"},
        {"event": "messages", "data": '["a\u00e9\u6f22"]', "id": "2"},
        {"event": "custom", "data": "line one\nline two", "id": "3"},
        {"event": "updates", "data": "{}", "id": "4"},
    ]


def test_a_per_call_review_and_an_interrupt_of_a_tools_own(page: Page, url: str) -> None:
    open_agent(page, url, "mail_each")
    ask(page, "hi")
    form = review(page)
    # The decisions this tool allows, read from the interrupt's response schema.
    expect(form.get_by_role("radio")).to_have_count(2)
    form.get_by_role("radio", name="Reject").check()
    form.get_by_role("button", name="Send decision").click()
    runs_ended(page, 2)
    expect(page.locator(".call .result .text")).to_contain_text(
        "User rejected the tool call for `send_email`")

    open_agent(page, url, "booking")
    ask(page, "a trip")
    form = review(page)
    expect(form.locator("pre")).to_contain_text('"question": "Book a flight to Paris?"')
    form.get_by_label("Your answer").fill("yes")
    form.get_by_role("button", name="Send decision").click()
    runs_ended(page, 2)
    assert answer_of(page) == "Done: booked to Paris"


def test_a_failed_run_shows_its_error(page: Page, url: str) -> None:
    open_agent(page, url, "broken")
    ask(page, "hello")
    runs_ended(page, 1)
    expect(page.locator(".run")).to_have_attribute("data-status", "error")
    expect(page.locator(".run .run-status").get_by_role("alert")).to_contain_text(
        "ScriptExhaustedError")
    expect(page.get_by_role("status")).to_have_text("The run failed.")


def test_reasoning_streams_folded_before_the_answer(page: Page, url: str) -> None:
    open_agent(page, url, "thinker")
    ask(page, "2 + 2?")
    runs_ended(page, 1)
    thinking = page.locator(".run .msg.ai details.thinking")
    expect(thinking.locator(".thought")).to_have_text("Let me think.")
    expect(thinking).not_to_have_attribute("open", "")
    assert answer_of(page) == "It is four."
    page.reload()  # from the thread's state too
    expect(page.locator("#log .msg.ai details.thinking .thought")).to_have_text("Let me think.")
