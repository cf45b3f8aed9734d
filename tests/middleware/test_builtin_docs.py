"""The Python examples of LangChain's built-in middleware docs, run with only their imports
changed: the model strings stay (``"gpt-5.4"``, ``"claude-..."``), and ``OPENAI_BASE_URL`` /
``ANTHROPIC_BASE_URL`` point at a loopback server that streams the scripted replies in each
provider's wire format. What the docs leave undefined (``your_weather_tool``, ``search_tool``)
is defined here. Each test then checks what the middleware did, on the requests the server
read and in the agent's result."""

from __future__ import annotations

import re
from typing import Any

import pytest

from rxagent import APIStatusError, create_agent
from rxagent.chat_models import init_chat_model
from rxagent.checkpoint import InMemorySaver
from rxagent.messages import AIMessage, HumanMessage, ToolMessage
from rxagent.middleware import (
    ClearToolUsesEdit,
    ContextEditingMiddleware,
    HumanInTheLoopMiddleware,
    LLMToolEmulator,
    LLMToolSelectorMiddleware,
    ModelCallLimitMiddleware,
    ModelFallbackMiddleware,
    ModelRetryMiddleware,
    PIIDetectionError,
    PIIMiddleware,
    SummarizationMiddleware,
    TodoListMiddleware,
    ToolCallLimitExceededError,
    ToolCallLimitMiddleware,
    ToolRetryMiddleware,
)
from rxagent.tools import tool
from rxagent.types import Command

from ..chat_models.loopback import LoopbackServer
from .over_the_wire import calls, claude_text, refused, sent_models, sent_text, text

# What the docs' examples name without defining.

def your_weather_tool(city: str) -> str:
    """Get the weather for a city."""
    return f"Sunny in {city}"


def your_calculator_tool(expression: str) -> str:
    """Evaluate an arithmetic expression."""
    return "4"


# --- Summarization ---------------------------------------------------------------------------


def long_history(turns: int, words: int) -> list[Any]:
    history: list[Any] = []
    for turn in range(turns):
        history.append(HumanMessage(content=f"question {turn}: " + "lorem " * words))
        history.append(AIMessage(content=f"answer {turn}: " + "ipsum " * words))
    return history


def test_summarization_summarises_older_messages_past_the_token_trigger(
        server: LoopbackServer) -> None:
    agent = create_agent(
        model="gpt-5.4",
        tools=[your_weather_tool, your_calculator_tool],
        middleware=[
            SummarizationMiddleware(
                model="gpt-5.4-mini",
                trigger=("tokens", 4000),
                keep=("messages", 20),
            ),
        ],
    )
    server.add(text("The user asked 15 questions about lorem."), text("Done."))
    history = long_history(15, 100)  # 30 messages, about 6,000 tokens by the default count
    result = agent.invoke({"messages": [*history, HumanMessage(content="and now?")]})

    assert result["messages"][-1].content == "Done."
    assert sent_models(server) == ["gpt-5.4-mini", "gpt-5.4"]
    # The summary call was shown the older messages; the model call got the summary and the
    # 20 most recent messages (the question just asked among them), nothing older.
    assert "question 0:" in sent_text(server, 0)
    asked = server.requests[1].json["messages"]
    assert "The user asked 15 questions about lorem." in asked[0]["content"]
    assert len(asked) == 1 + 20
    assert asked[-1]["content"] == "and now?"
    assert "question 0:" not in sent_text(server, 1)


def test_summarization_with_several_triggers_fires_on_any(server: LoopbackServer) -> None:
    # The docs' second agent of the full example: 3,000 tokens OR 6 messages.
    agent2 = create_agent(
        model="gpt-5.4",
        tools=[your_weather_tool, your_calculator_tool],
        middleware=[
            SummarizationMiddleware(
                model="gpt-5.4-mini",
                trigger=[
                    ("tokens", 3000),
                    ("messages", 6),
                ],
                keep=("messages", 20),
            ),
        ],
    )
    server.add(text("Nothing to summarise yet."))
    agent2.invoke({"messages": long_history(2, 3)})  # 4 messages, few tokens: no summary
    assert sent_models(server) == ["gpt-5.4"]

    # 26 short messages: the messages clause fires although the tokens one does not; the
    # six oldest are summarised and the model gets the summary and the 20 most recent.
    server.add(text("Six short exchanges."), text("Done."))
    agent2.invoke({"messages": long_history(13, 3)})
    assert sent_models(server)[1:] == ["gpt-5.4-mini", "gpt-5.4"]
    asked = server.requests[-1].json["messages"]
    assert "Six short exchanges." in asked[0]["content"]
    assert len(asked) == 1 + 20
    assert asked[1]["content"].startswith("question 3:")


# --- Human-in-the-loop -----------------------------------------------------------------------


def test_human_in_the_loop_asks_before_sending_and_not_before_reading(
        server: LoopbackServer) -> None:
    sent: list[str] = []

    def your_read_email_tool(email_id: str) -> str:
        """Mock function to read an email by its ID."""
        return f"Email content for ID: {email_id}"

    def your_send_email_tool(recipient: str, subject: str, body: str) -> str:
        """Mock function to send an email."""
        sent.append(recipient)
        return f"Email sent to {recipient} with subject '{subject}'"

    agent = create_agent(
        model="gpt-5.4",
        tools=[your_read_email_tool, your_send_email_tool],
        checkpointer=InMemorySaver(),
        middleware=[
            HumanInTheLoopMiddleware(
                interrupt_on={
                    "your_send_email_tool": {
                        "allowed_decisions": ["approve", "edit", "reject"],
                    },
                    "your_read_email_tool": False,
                }
            ),
        ],
    )
    config = {"configurable": {"thread_id": "hitl"}}
    server.add(calls(("your_read_email_tool", {"email_id": "42"})),
               calls(("your_send_email_tool",
                      {"recipient": "bob@example.com", "subject": "Re", "body": "Yes"})))
    paused = agent.invoke({"messages": "Answer email 42"}, config)

    # Reading went through; sending waits for a decision.
    assert any(isinstance(m, ToolMessage) and m.content == "Email content for ID: 42"
               for m in paused["messages"])
    (pending,) = paused["__interrupt__"]
    (action,) = pending.value["action_requests"]
    assert action["name"] == "your_send_email_tool"
    assert pending.value["review_configs"][0]["allowed_decisions"] == ["approve", "edit",
                                                                       "reject"]
    assert sent == []

    server.add(text("Sent."))
    edited = {"name": "your_send_email_tool",
              "args": {"recipient": "alice@example.com", "subject": "Re", "body": "Yes"}}
    done = agent.invoke(Command(resume={"decisions": [{"type": "edit",
                                                      "edited_action": edited}]}), config)
    assert sent == ["alice@example.com"]
    assert done["messages"][-1].content == "Sent."


# --- Model call limit ------------------------------------------------------------------------


def test_model_call_limit_ends_the_thread_after_ten_calls(server: LoopbackServer) -> None:
    agent = create_agent(
        model="gpt-5.4",
        checkpointer=InMemorySaver(),  # Required for thread limiting
        tools=[],
        middleware=[
            ModelCallLimitMiddleware(
                thread_limit=10,
                run_limit=5,
                exit_behavior="end",
            ),
        ],
    )
    config = {"configurable": {"thread_id": "limits"}}
    server.add(*[text(f"answer {n}") for n in range(10)])
    for n in range(10):
        assert agent.invoke({"messages": f"question {n}"}, config)["messages"][-1].content == \
            f"answer {n}"
    last = agent.invoke({"messages": "one more"}, config)["messages"][-1]
    assert len(server.requests) == 10  # the eleventh call was never made
    assert isinstance(last, AIMessage) and "limit" in last.content.lower()


# --- Tool call limit -------------------------------------------------------------------------


def test_tool_call_limits_global_and_per_tool(server: LoopbackServer) -> None:
    searched: list[str] = []

    @tool
    def search(query: str) -> str:
        """Search the web."""
        searched.append(query)
        return f"results for {query}"

    @tool
    def query_database(sql: str) -> str:
        """Query the database."""
        return "3 rows"

    search_tool, database_tool = search, query_database
    agent = create_agent(
        model="gpt-5.4",
        tools=[search_tool, database_tool],
        middleware=[
            # Global limit
            ToolCallLimitMiddleware(thread_limit=20, run_limit=10),
            # Tool-specific limit
            ToolCallLimitMiddleware(
                tool_name="search",
                thread_limit=5,
                run_limit=3,
            ),
        ],
    )
    server.add(calls(*[("search", {"query": f"q{n}"}) for n in range(4)],
                     ("query_database", {"sql": "select 1"})),
               text("Done."))
    result = agent.invoke({"messages": "Look it all up"})

    assert sorted(searched) == ["q0", "q1", "q2"]  # the fourth is over the run limit of 3
    answers = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    # As in LangChain, the blocked call is answered (with an error) by the limiter's
    # after_model step, before the tools step runs the others.
    assert [(m.tool_call_id, m.status) for m in answers] == [
        ("call_3_search", "error"), ("call_0_search", "success"), ("call_1_search", "success"),
        ("call_2_search", "success"), ("call_4_query_database", "success")]
    assert answers[4].content == "3 rows"
    assert result["messages"][-1].content == "Done."


def test_tool_call_limit_full_example_raises_on_the_strict_limiter(
        server: LoopbackServer) -> None:
    @tool
    def search(query: str) -> str:
        """Search the web."""
        return "results"

    @tool
    def query_database(sql: str) -> str:
        """Query the database."""
        return "rows"

    @tool
    def scrape_webpage(url: str) -> str:
        """Fetch a page's text."""
        return "page"

    search_tool, database_tool, scraper_tool = search, query_database, scrape_webpage

    global_limiter = ToolCallLimitMiddleware(thread_limit=20, run_limit=10)
    search_limiter = ToolCallLimitMiddleware(tool_name="search", thread_limit=5, run_limit=3)
    database_limiter = ToolCallLimitMiddleware(tool_name="query_database", thread_limit=10)
    strict_limiter = ToolCallLimitMiddleware(tool_name="scrape_webpage", run_limit=2,
                                             exit_behavior="error")

    agent = create_agent(
        model="gpt-5.4",
        tools=[search_tool, database_tool, scraper_tool],
        middleware=[global_limiter, search_limiter, database_limiter, strict_limiter],
    )
    server.add(calls(*[("scrape_webpage", {"url": f"https://e.com/{n}"}) for n in range(3)]))
    with pytest.raises(ToolCallLimitExceededError):
        agent.invoke({"messages": "Read three pages"})


# --- Model fallback --------------------------------------------------------------------------


def test_model_fallback_goes_from_openai_to_anthropic(server: LoopbackServer) -> None:
    agent = create_agent(
        model="gpt-5.4",
        tools=[],
        middleware=[
            ModelFallbackMiddleware(
                "gpt-5.4-mini",
                "claude-3-5-sonnet-20241022",
            ),
        ],
    )
    server.add(refused(), refused(), claude_text("Claude answers."))
    result = agent.invoke({"messages": "Hello"})

    assert result["messages"][-1].content == "Claude answers."
    assert [r.path for r in server.requests] == ["/v1/chat/completions"] * 2 + ["/v1/messages"]
    assert sent_models(server) == ["gpt-5.4", "gpt-5.4-mini", "claude-3-5-sonnet-20241022"]


# --- PII -------------------------------------------------------------------------------------


def test_pii_redacts_the_email_and_masks_the_card_before_the_model(
        server: LoopbackServer) -> None:
    agent = create_agent(
        model="gpt-5.4",
        tools=[],
        middleware=[
            PIIMiddleware("email", strategy="redact", apply_to_input=True),
            PIIMiddleware("credit_card", strategy="mask", apply_to_input=True),
        ],
    )
    server.add(text("Noted."))
    agent.invoke({"messages": "I am bob@example.com, card 4111 1111 1111 1111"})

    told = sent_text(server, 0)
    assert "bob@example.com" not in told and "[REDACTED_EMAIL]" in told
    assert "4111 1111 1111 1111" not in told and "1111" in told


def test_pii_custom_detectors(server: LoopbackServer) -> None:
    # Method 1: Regex pattern string
    agent1 = create_agent(
        model="gpt-5.4",
        tools=[],
        middleware=[
            PIIMiddleware(
                "api_key",
                detector=r"sk-[a-zA-Z0-9]{32}",
                strategy="block",
            ),
        ],
    )

    # Method 2: Compiled regex pattern
    agent2 = create_agent(
        model="gpt-5.4",
        tools=[],
        middleware=[
            PIIMiddleware(
                "phone_number",
                detector=re.compile(r"\+?\d{1,3}[\s.-]?\d{3,4}[\s.-]?\d{4}"),
                strategy="mask",
            ),
        ],
    )

    # Method 3: Custom detector function
    def detect_ssn(content: str) -> list[dict[str, str | int]]:
        """Detect SSN with validation.

        Returns a list of dictionaries with 'text', 'start', and 'end' keys.
        """
        import re
        matches = []
        pattern = r"\d{3}-\d{2}-\d{4}"
        for match in re.finditer(pattern, content):
            ssn = match.group(0)
            # Validate: first 3 digits shouldn't be 000, 666, or 900-999
            first_three = int(ssn[:3])
            if first_three not in [0, 666] and not (900 <= first_three <= 999):
                matches.append({
                    "text": ssn,
                    "start": match.start(),
                    "end": match.end(),
                })
        return matches

    agent3 = create_agent(
        model="gpt-5.4",
        tools=[],
        middleware=[
            PIIMiddleware(
                "ssn",
                detector=detect_ssn,
                strategy="hash",
            ),
        ],
    )

    with pytest.raises(PIIDetectionError):
        agent1.invoke({"messages": "my key is sk-" + "a1" * 16})
    assert server.requests == []  # blocked before the model was called

    server.add(text("Call you."), text("Filed."))
    agent2.invoke({"messages": "ring me on +1 555 0100"})
    assert "555 0100" not in sent_text(server, 0)

    agent3.invoke({"messages": "ssn 123-45-6789, and 666-12-3456 is not one"})
    told = sent_text(server, 1)
    assert "123-45-6789" not in told and "666-12-3456" in told


# --- To-do list ------------------------------------------------------------------------------


def test_todo_list_gives_the_model_write_todos(server: LoopbackServer) -> None:
    def read_file(path: str) -> str:
        """Read a file."""
        return "contents"

    def write_file(path: str, text: str) -> str:
        """Write a file."""
        return "written"

    def run_tests() -> str:
        """Run the test suite."""
        return "all pass"

    agent = create_agent(
        model="gpt-5.4",
        tools=[read_file, write_file, run_tests],
        middleware=[TodoListMiddleware()],
    )
    todos = [{"content": "read the code", "status": "in_progress"},
             {"content": "run the tests", "status": "pending"}]
    server.add(calls(("write_todos", {"todos": todos})), text("Planned."))
    result = agent.invoke({"messages": "Fix the bug"})

    assert result["todos"] == todos
    offered = [t["function"]["name"] for t in server.requests[0].json["tools"]]
    assert sorted(offered) == ["read_file", "run_tests", "write_file", "write_todos"]
    assert "write_todos" in server.requests[0].json["messages"][0]["content"]  # its prompt


# --- LLM tool selector -----------------------------------------------------------------------


def test_llm_tool_selector_offers_the_chosen_tools_and_search(server: LoopbackServer) -> None:
    def make(name: str) -> Any:
        def run(query: str) -> str:
            return name
        return tool(name=name, description=f"The {name} tool.")(run)

    tool1, tool2, tool3, tool4, tool5, search = (make(n) for n in (
        "tool1", "tool2", "tool3", "tool4", "tool5", "search"))
    agent = create_agent(
        model="gpt-5.4",
        tools=[tool1, tool2, tool3, tool4, tool5, search],  # the docs' "..." made concrete
        middleware=[
            LLMToolSelectorMiddleware(
                model="gpt-5.4-mini",
                max_tools=3,
                always_include=["search"],
            ),
        ],
    )
    server.add(calls(("ToolSelectionResponse", {"tools": ["tool4", "tool2", "tool5", "tool1"]})),
               text("Answered."))
    agent.invoke({"messages": "Which tools?"})

    assert sent_models(server) == ["gpt-5.4-mini", "gpt-5.4"]
    offered = [t["function"]["name"] for t in server.requests[1].json["tools"]]
    assert offered == ["tool2", "tool4", "tool5", "search"]


# --- Tool retry ------------------------------------------------------------------------------


def test_tool_retry_full_example_retries_only_the_named_tool_and_errors(
        server: LoopbackServer) -> None:
    attempts = {"api_tool": 0, "search_tool": 0}

    def api_tool(path: str) -> str:
        """Call the API."""
        attempts["api_tool"] += 1
        if attempts["api_tool"] == 1:
            raise ConnectionError("reset by peer")
        return "api ok"

    def search_tool(query: str) -> str:
        """Search."""
        attempts["search_tool"] += 1
        raise ConnectionError("search is down")

    def database_tool(sql: str) -> str:
        """Query."""
        raise ValueError("bad sql")

    agent = create_agent(
        model="gpt-5.4",
        tools=[search_tool, database_tool, api_tool],
        middleware=[
            ToolRetryMiddleware(
                max_retries=3,
                backoff_factor=2.0,
                initial_delay=1.0,
                max_delay=60.0,
                jitter=True,
                tools=["api_tool"],
                retry_on=(ConnectionError, TimeoutError),
                on_failure="continue",
            ),
        ],
    )
    server.add(calls(("api_tool", {"path": "/x"}), ("search_tool", {"query": "q"})),
               text("Done."))
    result = agent.invoke({"messages": "Go"})

    answers = {m.name: m for m in result["messages"] if isinstance(m, ToolMessage)}
    assert attempts == {"api_tool": 2, "search_tool": 1}  # one retry, of the named tool only
    assert answers["api_tool"].content == "api ok"
    assert answers["search_tool"].status == "error"


def test_tool_retry_deprecated_failure_names_still_work() -> None:
    with pytest.warns(DeprecationWarning, match="continue"):
        assert ToolRetryMiddleware(on_failure="return_message").on_failure == "continue"
    with pytest.warns(DeprecationWarning, match="error"):
        assert ToolRetryMiddleware(on_failure="raise").on_failure == "error"


# --- Model retry -----------------------------------------------------------------------------


def test_model_retry_full_example(server: LoopbackServer) -> None:
    # Basic usage with default settings (2 retries, exponential backoff)
    def search_tool(query: str) -> str:
        """Search."""
        return "results"

    agent = create_agent(
        model="gpt-5.4",
        tools=[search_tool],
        middleware=[ModelRetryMiddleware()],
    )

    # Custom exception filtering
    class TimeoutError(Exception):
        """Custom exception for timeout errors."""
        pass

    class ConnectionError(Exception):
        """Custom exception for connection errors."""
        pass

    # Retry specific exceptions only
    retry = ModelRetryMiddleware(
        max_retries=4,
        retry_on=(TimeoutError, ConnectionError),
        backoff_factor=1.5,
    )

    def should_retry(error: Exception) -> bool:
        # Only retry on rate limit errors
        if isinstance(error, TimeoutError):
            return True
        # Or check for specific HTTP status codes
        if hasattr(error, "status_code"):
            return error.status_code in (429, 503)
        return False

    retry_with_filter = ModelRetryMiddleware(
        max_retries=3,
        retry_on=should_retry,
    )

    # Custom error message formatting
    def format_error(error: Exception) -> str:
        return f"Model call failed: {error}. Please try again later."

    retry_with_formatter = ModelRetryMiddleware(
        max_retries=4,
        on_failure=format_error,
    )

    # Raise exception on failure
    strict_retry = ModelRetryMiddleware(
        max_retries=2,
        on_failure="error",  # Re-raise exception instead of returning message
    )

    server.add(text("Fine."))
    assert agent.invoke({"messages": "Hi"})["messages"][-1].content == "Fine."
    assert retry.retry_on == (TimeoutError, ConnectionError)
    assert strict_retry.on_failure == "error"

    # A 400 has status_code 400: should_retry says no, and an error retry_on does not match
    # is raised at once, as LangChain does (on_failure is for retries that ran out).
    filtered = create_agent(model="gpt-5.4", tools=[], middleware=[retry_with_filter])
    server.add(refused(400))
    with pytest.raises(APIStatusError, match="model unavailable"):
        filtered.invoke({"messages": "Hi"})
    assert len(server.requests) == 2

    # Retries that run out end in on_failure's message (a 503 here, which the model client
    # does not retry itself with max_retries=0).
    formatted = create_agent(model=init_chat_model("gpt-5.4", max_retries=0), tools=[],
                             middleware=[ModelRetryMiddleware(max_retries=0,
                                                              on_failure=format_error)])
    server.add(refused(503))
    message = formatted.invoke({"messages": "Hi"})["messages"][-1]
    assert isinstance(message, AIMessage)
    assert message.content.startswith("Model call failed: ")
    assert "model unavailable" in message.content
    assert retry_with_formatter.on_failure is format_error


# --- LLM tool emulator -----------------------------------------------------------------------


def test_llm_tool_emulator_answers_instead_of_the_tools(server: LoopbackServer) -> None:
    ran: list[str] = []

    @tool
    def get_weather(location: str) -> str:
        """Get the current weather for a location."""
        ran.append("get_weather")
        return f"Weather in {location}"

    @tool
    def send_email(to: str, subject: str, body: str) -> str:
        """Send an email."""
        ran.append("send_email")
        return "Email sent"

    # LangChain's default emulator model is deprecated (a warning), as it is here.
    with pytest.warns(DeprecationWarning, match="pass model= explicitly"):
        # Emulate all tools (default behavior)
        agent = create_agent(
            model="gpt-5.4",
            tools=[get_weather, send_email],
            middleware=[LLMToolEmulator()],
        )

    with pytest.warns(DeprecationWarning, match="pass model= explicitly"):
        # Emulate specific tools only
        agent2 = create_agent(
            model="gpt-5.4",
            tools=[get_weather, send_email],
            middleware=[LLMToolEmulator(tools=["get_weather"])],
        )

    # Use custom model for emulation
    agent4 = create_agent(
        model="gpt-5.4",
        tools=[get_weather, send_email],
        middleware=[LLMToolEmulator(model="claude-sonnet-4-6")],
    )

    server.add(calls(("get_weather", {"location": "Paris"})),
               claude_text("18°C and cloudy"), text("Cloudy."))
    result = agent.invoke({"messages": "Weather in Paris?"})
    assert ran == []
    (answer,) = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert answer.content == "18°C and cloudy"
    assert sent_models(server) == ["gpt-5.4", "claude-sonnet-4-5-20250929", "gpt-5.4"]
    emulation = sent_text(server, 1)
    assert "get_weather" in emulation and "Paris" in emulation

    server.add(calls(("get_weather", {"location": "Oslo"}),
                     ("send_email", {"to": "a@b.c", "subject": "s", "body": "b"})),
               claude_text("-3°C"), text("Sent."))
    agent2.invoke({"messages": "Weather in Oslo, then mail it"})
    assert ran == ["send_email"]  # the one tool not emulated ran

    server.add(calls(("send_email", {"to": "a@b.c", "subject": "s", "body": "b"})),
               claude_text("Email queued"), text("Done."))
    agent4.invoke({"messages": "Mail it"})
    assert ran == ["send_email"]
    assert sent_models(server)[-2] == "claude-sonnet-4-6"


# --- Context editing -------------------------------------------------------------------------


def test_context_editing_clears_old_tool_results_past_the_trigger(
        server: LoopbackServer) -> None:
    def search_tool(query: str) -> str:
        """Search."""
        return "result " * 300

    agent = create_agent(
        model="gpt-5.4",
        tools=[search_tool, your_calculator_tool],
        middleware=[
            ContextEditingMiddleware(
                edits=[
                    ClearToolUsesEdit(
                        trigger=2000,
                        keep=3,
                        clear_tool_inputs=False,
                        exclude_tools=[],
                        placeholder="[cleared]",
                    ),
                ],
            ),
        ],
    )
    server.add(*[calls(("search_tool", {"query": f"q{n}"})) for n in range(6)], text("Done."))
    agent.invoke({"messages": "Search six times"})

    # Each result is about 450 tokens: the fifth call's request is over 2,000, and from then
    # on all but the three most recent results are cleared.
    last = server.requests[-1].json["messages"]
    results = [m["content"] for m in last if m["role"] == "tool"]
    assert results[:3] == ["[cleared]"] * 3
    assert all(r.startswith("result ") for r in results[3:])
    first = server.requests[1].json["messages"]
    assert [m["content"] for m in first if m["role"] == "tool"] == ["result " * 300]


def test_summarization_with_fractional_limits_reads_the_models_profile(
        server: LoopbackServer) -> None:
    # Using fractional limits (the docs' third agent): as written, the fractions are of the
    # summarisation model's window, as in LangChain (gpt-5.4-mini's 400,000 tokens), so 0.8 of
    # it is far off and nothing is summarised.
    agent3 = create_agent(
        model="gpt-5.4",
        tools=[your_weather_tool, your_calculator_tool],
        middleware=[
            SummarizationMiddleware(
                model="gpt-5.4-mini",
                trigger=("fraction", 0.8),
                keep=("fraction", 0.3),
            ),
        ],
    )
    server.add(text("Long ago."))
    agent3.invoke({"messages": long_history(15, 100)})
    assert sent_models(server) == ["gpt-5.4"]

    # With the docs' tip, a profile of 5,000 tokens: 0.8 is 4,000, which 6,000 tokens of
    # history pass; what is kept fits in 0.3 of it (1,500 tokens).
    custom_profile = {
        "max_input_tokens": 5_000,
        # ...
    }
    model = init_chat_model("gpt-5.4-mini", profile=custom_profile)
    small = create_agent(model="gpt-5.4", tools=[],
                         middleware=[SummarizationMiddleware(
                             model=model, trigger=("fraction", 0.8), keep=("fraction", 0.3))])
    server.add(text("Fifteen questions about lorem."), text("Done."))
    small.invoke({"messages": long_history(15, 100)})
    assert sent_models(server)[1:] == ["gpt-5.4-mini", "gpt-5.4"]
    kept = server.requests[-1].json["messages"][1:]
    assert 1 <= len(kept) < 30
    assert sum(len(m["content"]) for m in kept) / 4 <= 1_500  # the default count: 4 chars
