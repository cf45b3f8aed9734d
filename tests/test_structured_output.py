"""``create_agent(response_format=...)``: LangChain's Structured output docs, run with only the
imports and the model changed, and the behaviour behind them checked against LangChain's.

The docs' examples call ``model="openai:gpt-5"``; here a scripted model named ``gpt-5`` (so a
bare schema picks the provider's native form, as LangChain picks it for that name) or plain
``scripted`` (the tool form) gives the answers the docs print.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal, Optional, Union

import anyio
import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from rxagent import (
    MultipleStructuredOutputsError,
    RunError,
    StructuredOutputError,
    StructuredOutputValidationError,
    UsageError,
    create_agent,
)
from rxagent.checkpoint import InMemorySaver
from rxagent.messages import AIMessage, ToolMessage
from rxagent.middleware import AgentMiddleware, ModelRequest, ModelResponse
from rxagent.structured_output import AutoStrategy, ProviderStrategy, ToolStrategy
from rxagent.testing import ScriptedChatModel

tools: list[Any] = []
CONTACT = {"name": "John Doe", "email": "john@example.com", "phone": "(555) 123-4567"}
CONTACT_QUESTION = {"messages": [{"role": "user", "content": (
    "Extract contact info from: John Doe, john@example.com, (555) 123-4567")}]}
REVIEW = {"rating": 5, "sentiment": "positive", "key_points": ["fast shipping", "expensive"]}
REVIEW_QUESTION = {"messages": [{"role": "user", "content": (
    "Analyze this review: 'Great product: 5 out of 5 stars. Fast shipping, but expensive'")}]}


def native(answer: dict[str, Any]) -> ScriptedChatModel:
    """A model named as one that has native structured output, answering with JSON text."""
    return ScriptedChatModel([json.dumps(answer)], model_name="gpt-5")


def calls(*answers: tuple[str, dict[str, Any]]) -> ScriptedChatModel:
    """A model that answers each call with one tool call."""
    return ScriptedChatModel([
        AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"call_{i}"}])
        for i, (name, args) in enumerate(answers, 1)
    ])


# -- Provider strategy: the docs' four schema kinds ------------------------------------------


class ContactInfo(BaseModel):
    """Contact information for a person."""
    name: str = Field(description="The name of the person")
    email: str = Field(description="The email address of the person")
    phone: str = Field(description="The phone number of the person")


@dataclasses.dataclass
class ContactInfoDC:
    """Contact information for a person."""
    name: str  # The name of the person
    email: str  # The email address of the person
    phone: str  # The phone number of the person


class ContactInfoTD(TypedDict):
    """Contact information for a person."""
    name: str  # The name of the person
    email: str  # The email address of the person
    phone: str  # The phone number of the person


contact_info_schema = {
    "type": "object",
    "description": "Contact information for a person.",
    "properties": {
        "name": {"type": "string", "description": "The name of the person"},
        "email": {"type": "string", "description": "The email address of the person"},
        "phone": {"type": "string", "description": "The phone number of the person"}
    },
    "required": ["name", "email", "phone"]
}


@pytest.mark.parametrize(("schema", "expected"), [
    (ContactInfo, ContactInfo(**CONTACT)),
    (ContactInfoDC, ContactInfoDC(**CONTACT)),
    (ContactInfoTD, CONTACT),
    (contact_info_schema, CONTACT),
])
def test_the_provider_strategy_examples(schema: Any, expected: Any) -> None:
    model = native(CONTACT)
    agent = create_agent(
        model=model,
        tools=tools,
        response_format=schema  # Auto-selects ProviderStrategy
    )

    result = agent.invoke(CONTACT_QUESTION)

    assert result["structured_response"] == expected
    # The provider's native form: OpenAI's response_format, no output tool, no tool_choice.
    sent = model.calls[0].kwargs["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["name"] == ("ContactInfo" if schema is ContactInfo else
                                           sent["json_schema"]["name"])
    assert sent["json_schema"]["strict"] is False  # as LangChain sends it unless asked
    assert model.calls[0].tools == []
    assert "tool_choice" not in model.calls[0].kwargs
    # No tool message: the answer is the reply's text.
    assert [m.type for m in result["messages"]] == ["human", "ai"]


def test_a_model_without_a_native_form_gets_the_tool_form_for_a_bare_schema() -> None:
    model = calls(("ContactInfo", CONTACT))
    result = create_agent(model, tools, response_format=ContactInfo).invoke(CONTACT_QUESTION)
    assert result["structured_response"] == ContactInfo(**CONTACT)
    assert model.calls[0].kwargs == {"tool_choice": "any"}
    assert [t["name"] for t in model.calls[0].tools] == ["ContactInfo"]


def test_strict_provider_strategy_closes_every_object() -> None:
    model = native(CONTACT)
    create_agent(model, tools, response_format=ProviderStrategy(ContactInfo, strict=True)
                 ).invoke(CONTACT_QUESTION)
    body = model.calls[0].kwargs["response_format"]["json_schema"]
    assert body["strict"] is True
    assert body["schema"]["additionalProperties"] is False


# -- Tool calling strategy: the docs' five schema kinds --------------------------------------


class ProductReview(BaseModel):
    """Analysis of a product review."""
    rating: Optional[int] = Field(description="The rating of the product", ge=1, le=5)  # noqa: UP045
    sentiment: Literal["positive", "negative"] = Field(description="The sentiment of the review")
    key_points: list[str] = Field(description="The key points of the review. Lowercase, 1-3 words each.")  # noqa: E501


@dataclasses.dataclass
class ProductReviewDC:
    """Analysis of a product review."""
    rating: Optional[int]  # The rating of the product (1-5)  # noqa: UP045
    sentiment: Literal["positive", "negative"]  # The sentiment of the review
    key_points: list[str]  # The key points of the review


class ProductReviewTD(TypedDict):
    """Analysis of a product review."""
    rating: Optional[int]  # The rating of the product (1-5)  # noqa: UP045
    sentiment: Literal["positive", "negative"]  # The sentiment of the review
    key_points: list[str]  # The key points of the review


product_review_schema = {
    "type": "object",
    "description": "Analysis of a product review.",
    "properties": {
        "rating": {
            "type": ["integer", "null"],
            "description": "The rating of the product (1-5)",
            "minimum": 1,
            "maximum": 5
        },
        "sentiment": {
            "type": "string",
            "enum": ["positive", "negative"],
            "description": "The sentiment of the review"
        },
        "key_points": {
            "type": "array",
            "items": {"type": "string"},
            "description": "The key points of the review"
        }
    },
    "required": ["sentiment", "key_points"]
}


class CustomerComplaint(BaseModel):
    """A customer complaint about a product or service."""
    issue_type: Literal["product", "service", "shipping", "billing"] = Field(description="The type of issue")  # noqa: E501
    severity: Literal["low", "medium", "high"] = Field(description="The severity of the complaint")
    description: str = Field(description="Brief description of the complaint")


@pytest.mark.parametrize(("schema", "tool", "expected"), [
    (ProductReview, "ProductReview", ProductReview(**REVIEW)),  # type: ignore[arg-type]
    (ProductReviewDC, "ProductReviewDC", ProductReviewDC(**REVIEW)),  # type: ignore[arg-type]
    (ProductReviewTD, "ProductReviewTD", REVIEW),
    (product_review_schema, "ProductReview", REVIEW),
    (Union[ProductReview, CustomerComplaint], "ProductReview",  # noqa: UP007
     ProductReview(**REVIEW)),  # type: ignore[arg-type]
])
def test_the_tool_strategy_examples(schema: Any, tool: str, expected: Any) -> None:
    if isinstance(schema, dict):
        schema = {**schema, "title": "ProductReview"}
    model = calls((tool, REVIEW))
    agent = create_agent(
        model=model,
        tools=tools,
        response_format=ToolStrategy(schema)
    )

    result = agent.invoke(REVIEW_QUESTION)
    assert result["structured_response"] == expected
    assert model.calls[0].kwargs == {"tool_choice": "any"}
    offered = [t["name"] for t in model.calls[0].tools]
    assert tool in offered
    assert len(offered) == (2 if tool == "ProductReview" and "Union" in repr(schema) else 1)
    answer = result["messages"][-1]
    assert isinstance(answer, ToolMessage) and answer.name == tool
    assert answer.content == f"Returning structured response: {expected}"


class MeetingAction(BaseModel):
    """Action items extracted from a meeting transcript."""
    task: str = Field(description="The specific task to be completed")
    assignee: str = Field(description="Person responsible for the task")
    priority: Literal["low", "medium", "high"] = Field(description="Priority level")


def test_custom_tool_message_content() -> None:
    action = {"task": "Update the project timeline", "assignee": "Sarah", "priority": "high"}
    agent = create_agent(
        model=calls(("MeetingAction", action)),
        tools=[],
        response_format=ToolStrategy(
            schema=MeetingAction,
            tool_message_content="Action item captured and added to meeting notes!"
        )
    )

    result = agent.invoke({
        "messages": [{"role": "user", "content": "From our meeting: Sarah needs to update the project timeline as soon as possible"}]  # noqa: E501
    })
    last = result["messages"][-1]
    assert last.name == "MeetingAction"
    assert last.content == "Action item captured and added to meeting notes!"


# -- Error handling ---------------------------------------------------------------------------


class ContactInfo2(BaseModel):
    name: str = Field(description="Person's name")
    email: str = Field(description="Email address")


class EventDetails(BaseModel):
    event_name: str = Field(description="Name of the event")
    date: str = Field(description="Event date")


def test_multiple_structured_outputs_are_sent_back_and_retried() -> None:
    contact = {"name": "John Doe", "email": "john@email.com"}
    model = ScriptedChatModel([
        AIMessage(content="", tool_calls=[
            {"name": "ContactInfo2", "args": contact, "id": "call_1"},
            {"name": "EventDetails", "args": {"event_name": "Tech Conference",
                                              "date": "March 15th"}, "id": "call_2"}]),
        AIMessage(content="", tool_calls=[{"name": "ContactInfo2", "args": contact,
                                           "id": "call_3"}]),
    ])
    agent = create_agent(
        model=model,
        tools=[],
        response_format=ToolStrategy(Union[ContactInfo2, EventDetails])  # noqa: UP007
    )

    steps = list(agent.stream({
        "messages": [{"role": "user", "content": "Extract info: John Doe (john@email.com) is organizing Tech Conference on March 15th"}]  # noqa: E501
    }))
    assert [list(step) for step in steps] == [["model"], ["model"]]
    first = steps[0]["model"]
    assert first["structured_response"] is None
    expected = ("Error: Model incorrectly returned multiple structured responses "
                "(ContactInfo2, EventDetails) when only one is expected.\n Please fix your "
                "mistakes.")
    assert [(m.name, m.content) for m in first["messages"][1:]] == [
        ("ContactInfo2", expected), ("EventDetails", expected)]
    second = steps[1]["model"]
    assert second["structured_response"] == ContactInfo2(**contact)
    assert second["messages"][1].content == (
        "Returning structured response: name='John Doe' email='john@email.com'")


class ProductRating(BaseModel):
    rating: Optional[int] = Field(description="Rating from 1-5", ge=1, le=5)  # noqa: UP045
    comment: str = Field(description="Review comment")


RATINGS = [("ProductRating", {"rating": 10, "comment": "Amazing product"}),
           ("ProductRating", {"rating": 5, "comment": "Amazing product"})]


def test_a_validation_error_is_sent_back_and_retried() -> None:
    agent = create_agent(
        model=calls(*RATINGS),
        tools=[],
        response_format=ToolStrategy(ProductRating),  # Default: handle_errors=True
        system_prompt="You are a helpful assistant that parses product reviews. Do not make any field or value up."  # noqa: E501
    )

    result = agent.invoke({
        "messages": [{"role": "user", "content": "Parse this: Amazing product, 10/10!"}]
    })
    error = result["messages"][2]
    assert error.name == "ProductRating"
    assert error.content.startswith(
        "Error: Failed to parse structured output for tool 'ProductRating': Failed to parse "
        "data to ProductRating: 1 validation error for ProductRating\nrating\n  Input should "
        "be less than or equal to 5")
    assert error.content.endswith(".\n Please fix your mistakes.")
    assert result["messages"][-1].content == (
        "Returning structured response: rating=5 comment='Amazing product'")
    assert result["structured_response"] == ProductRating(rating=5, comment="Amazing product")


def custom_error_handler(error: Exception) -> str:
    if isinstance(error, StructuredOutputValidationError):
        return "There was an issue with the format. Try again."
    elif isinstance(error, MultipleStructuredOutputsError):
        return "Multiple structured outputs were returned. Pick the most relevant one."
    else:
        return f"Error: {error!s}"


@pytest.mark.parametrize(("handle_errors", "told"), [
    ("Please provide a valid rating between 1-5 and include a comment.",
     "Please provide a valid rating between 1-5 and include a comment."),
    (custom_error_handler, "There was an issue with the format. Try again."),
    (StructuredOutputError, "Error: Failed to parse"),
    ((TypeError, StructuredOutputValidationError), "Error: Failed to parse"),
])
def test_error_handling_strategies_that_retry(handle_errors: Any, told: str) -> None:
    agent = create_agent(calls(*RATINGS), [], response_format=ToolStrategy(
        schema=ProductRating, handle_errors=handle_errors))
    result = agent.invoke({"messages": ["Parse this: Amazing product, 10/10!"]})
    assert result["messages"][2].content.startswith(told)
    assert result["structured_response"].rating == 5


@pytest.mark.parametrize("handle_errors", [False, ValueError, (ValueError, TypeError)])
def test_error_handling_strategies_that_raise(handle_errors: Any) -> None:
    # LangChain's StructuredOutputValidationError is no ValueError, so handle_errors=ValueError
    # lets it through, there and here.
    agent = create_agent(calls(*RATINGS), [], response_format=ToolStrategy(
        schema=ProductRating, handle_errors=handle_errors))
    with pytest.raises(StructuredOutputValidationError) as caught:
        agent.invoke({"messages": ["Parse this: Amazing product, 10/10!"]})
    assert caught.value.tool_name == "ProductRating"
    assert isinstance(caught.value.ai_message, AIMessage)
    assert isinstance(caught.value, RunError)


def test_a_native_answer_that_does_not_fit_fails_the_run() -> None:
    agent = create_agent(native({"name": "x"}), [], response_format=ContactInfo)
    with pytest.raises(StructuredOutputValidationError, match="ContactInfo"):
        agent.invoke(CONTACT_QUESTION)
    agent = create_agent(ScriptedChatModel(["not json"], model_name="gpt-5"), [],
                         response_format=ContactInfo)
    with pytest.raises(StructuredOutputValidationError, match="expected valid JSON"):
        agent.invoke(CONTACT_QUESTION)


# -- the loop around it, as LangChain's edges run it -------------------------------------------


def get_weather(city: str) -> str:
    """Get the weather for a city."""
    return f"It's always sunny in {city}!"


def test_tools_first_then_the_answer_ends_the_run() -> None:
    model = ScriptedChatModel([
        AIMessage(content="", tool_calls=[{"name": "get_weather", "args": {"city": "sf"},
                                           "id": "c0"}]),
        AIMessage(content="", tool_calls=[{"name": "ProductRating",
                                           "args": {"rating": 5, "comment": "sunny"},
                                           "id": "c1"}]),
    ])
    agent = create_agent(model, [get_weather], response_format=ToolStrategy(ProductRating))
    steps = list(agent.stream({"messages": ["weather?"]}))
    assert [list(s) for s in steps] == [["model"], ["tools"], ["model"]]
    assert steps[0]["model"]["structured_response"] is None
    assert steps[2]["model"]["structured_response"] == ProductRating(rating=5, comment="sunny")
    assert [t["name"] for t in model.calls[0].tools] == ["get_weather", "ProductRating"]


def test_an_answer_beside_a_tool_call_runs_the_tool_then_ends() -> None:
    model = ScriptedChatModel([AIMessage(content="", tool_calls=[
        {"name": "get_weather", "args": {"city": "sf"}, "id": "c0"},
        {"name": "ProductRating", "args": {"rating": 5, "comment": "sunny"}, "id": "c1"},
    ])])
    agent = create_agent(model, [get_weather], response_format=ToolStrategy(ProductRating))
    result = agent.invoke({"messages": ["weather?"]})
    assert [m.type for m in result["messages"]] == ["human", "ai", "tool", "tool"]
    assert result["structured_response"].comment == "sunny"


def test_a_text_reply_with_tools_ends_without_an_answer() -> None:
    agent = create_agent(ScriptedChatModel(["hello"]), [get_weather],
                         response_format=ToolStrategy(ProductRating))
    result = agent.invoke({"messages": ["hi"]})
    assert result["structured_response"] is None


def test_without_a_response_format_the_state_has_no_answer_key() -> None:
    result = create_agent(ScriptedChatModel(["hi"])).invoke({"messages": ["hi"]})
    assert "structured_response" not in result


def test_the_answer_tool_message_streams_in_messages_mode() -> None:
    agent = create_agent(calls(RATINGS[1]), [], response_format=ToolStrategy(ProductRating))
    seen = [m for m, _ in agent.stream({"messages": ["x"]}, stream_mode="messages")
            if isinstance(m, ToolMessage)]
    assert [m.content for m in seen] == [
        "Returning structured response: rating=5 comment='Amazing product'"]


def test_on_a_thread_the_answer_is_saved_and_cleared_by_the_next_turn() -> None:
    model = ScriptedChatModel([
        AIMessage(content="", tool_calls=[{"name": "ContactInfo", "args": CONTACT, "id": "c"}]),
        "no answer this time",
    ])
    # The saver keeps JSON: a pydantic answer is saved as its JSON (json.dumps would refuse it).
    agent = create_agent(model, [get_weather], response_format=ContactInfo,
                         checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "1"}}
    assert agent.invoke(CONTACT_QUESTION, config)["structured_response"] == ContactInfo(
        **CONTACT)
    assert agent.get_state(config).values["structured_response"] == ContactInfo(**CONTACT)
    # The next turn's model step writes None: the earlier answer does not linger.
    assert agent.invoke({"messages": ["again"]}, config)["structured_response"] is None


def test_a_middleware_sees_the_answer_and_the_format() -> None:
    seen: list[Any] = []

    class Watch(AgentMiddleware[Any, Any]):
        def wrap_model_call(self, request: ModelRequest[Any], handler: Any) -> ModelResponse:
            seen.append(request.response_format)
            response = handler(request)
            seen.append(response.structured_response)
            return response  # type: ignore[no-any-return]

    agent = create_agent(calls(RATINGS[1]), [], response_format=ProductRating,
                         middleware=[Watch()])
    result = agent.invoke({"messages": ["x"]})
    assert isinstance(seen[0], AutoStrategy)
    assert seen[1] == result["structured_response"] == ProductRating(
        rating=5, comment="Amazing product")
    assert [m.type for m in result["messages"]] == ["human", "ai", "tool"]


def test_a_bad_schema_is_refused_at_create_agent() -> None:
    with pytest.raises(UsageError, match="structured output schema"):
        create_agent(ScriptedChatModel([]), [], response_format=int)
    with pytest.raises(UsageError, match="share a name"):
        create_agent(ScriptedChatModel([]), [get_weather], response_format=ToolStrategy(
            {"title": "get_weather", "type": "object", "properties": {}}))


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
def test_ainvoke_gives_the_answer(anyio_backend: str) -> None:
    async def main() -> Any:
        agent = create_agent(calls(RATINGS[1]), [], response_format=ToolStrategy(ProductRating))
        return await agent.ainvoke({"messages": ["x"]})

    result = anyio.run(main, backend=anyio_backend)
    assert result["structured_response"].rating == 5
