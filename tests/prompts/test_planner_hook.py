import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from glmimage.errors import InputError
from glmimage.prompts.brief import Brief, compile_brief
from glmimage.prompts.planner_hook import (
    OpenAIChatPlanner,
    PlannerError,
    PlannerHook,
    RuleBasedPlanner,
    make_planner,
)


# --- rule-based -------------------------------------------------------------------------------------------------
def test_rule_based_lays_out_quoted_texts_and_reads_keywords():
    spec = RuleBasedPlanner().expand(
        'Make a vertical poster for our summer sale in navy blue and orange, titled "SUMMER SALE" with "50% OFF"')
    assert isinstance(spec, Brief) and spec.role == "poster" and spec.aspect == "vertical-social"
    assert spec.subject == "our summer sale in navy blue and orange"
    assert [(r.position, r.text) for r in spec.layout] == [("top", "SUMMER SALE"), ("center", "50% OFF")]
    assert spec.palette == ("#1B2A49", "#FF8C00")  # "navy blue" wins over "blue"
    assert compile_brief(spec).glyph_texts == ["SUMMER SALE", "50% OFF"]


@pytest.mark.parametrize("request_text, role, aspect, subject", [
    ('An infographic about coffee brewing, minimal style, steps "GRIND", "BREW"', "infographic", None,
     "coffee brewing, minimal style"),
    ('a 16:9 slide about quarterly results titled "Q3 RESULTS"', "slide", "16:9", "quarterly results"),
    ("A cat sitting on a windowsill", "illustration", None, "a cat sitting on a windowsill"),
    # keywords inside quotes don't count
    ('A poster saying "SLIDE INTO SUMMER"', "poster", "poster", "a typographic design"),
    ("Acme's instagram story for Joe's cafe", "social post", "story",
     "Acme\u2019s instagram story for Joe\u2019s cafe"),
])
def test_rule_based_roles_aspects_and_subjects(request_text, role, aspect, subject):
    spec = RuleBasedPlanner().expand(request_text)
    assert (spec.role, spec.aspect, spec.subject) == (role, aspect, subject)


def test_rule_based_is_deterministic_and_keeps_every_quoted_text():
    text = 'a menu for Luigi\'s with "PIZZA 9", "PASTA 8", "WINE 5" and "TIRAMISU 4"'
    a, b = RuleBasedPlanner().expand(text), RuleBasedPlanner().expand(text)
    assert a == b and a.role == "menu"
    assert a.glyph_texts == ["PIZZA 9", "PASTA 8", "WINE 5", "TIRAMISU 4"]
    with pytest.raises(InputError, match="empty"):
        RuleBasedPlanner().expand("  ")


# --- OpenAI-compatible endpoint on a real local HTTP server ------------------------------------------------------
class FakeChatServer:
    """A local server speaking the chat completions protocol; answers are queued by the test."""

    def __init__(self):
        self.requests: list[dict] = []
        self.answers: list[tuple[int, object]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                status, answer = server.answers.pop(0)
                if isinstance(answer, str) and status == 200:  # the model's message content
                    answer = {"id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                              "choices": [{"index": 0, "finish_reason": "stop",
                                           "message": {"role": "assistant", "content": answer}}]}
                data = json.dumps(answer).encode() if not isinstance(answer, bytes) else answer
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def chat_server():
    server = FakeChatServer()
    yield server
    server.close()


SPEC = {
    "subject": "our summer sale", "role": "poster", "aspect": "story", "style": "retro, sunny",
    "palette": ["#ff8c00"],
    "layout": [{"position": "top", "content": "a wavy headline", "text": "SUMMER SALE"},
               {"position": "bottom", "content": "a sticker", "text": "50% OFF"}],
}
REQUEST = 'a poster for our summer sale, "SUMMER SALE" and "50% OFF"'


def test_openai_planner_speaks_the_protocol_and_parses_the_spec(chat_server):
    chat_server.answers.append((200, "```json\n" + json.dumps(SPEC) + "\n```"))
    planner = OpenAIChatPlanner(base_url=chat_server.url, model="planner-7b", api_key="k-123", timeout_s=10)
    assert isinstance(planner, PlannerHook)
    spec = planner.expand(REQUEST)
    assert spec.aspect == "story" and spec.palette == ("#FF8C00",) and spec.glyph_texts == ["SUMMER SALE", "50% OFF"]
    [req] = chat_server.requests
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer k-123"
    body = req["body"]
    assert body["model"] == "planner-7b" and body["temperature"] == 0.0
    assert body["response_format"] == {"type": "json_object"}
    assert [m["role"] for m in body["messages"]] == ["system", "user"] and body["messages"][1]["content"] == REQUEST
    assert "JSON" in body["messages"][0]["content"]


def test_openai_planner_errors_are_clear(chat_server):
    planner = OpenAIChatPlanner(base_url=chat_server.url + "/", model="m", timeout_s=10, json_mode=False)
    chat_server.answers.append((500, {"error": "overloaded"}))
    with pytest.raises(PlannerError, match="answered HTTP 500"):
        planner.expand(REQUEST)
    assert chat_server.requests[-1]["auth"] is None and "response_format" not in chat_server.requests[-1]["body"]
    chat_server.answers.append((200, "Sure! Here is a poster idea."))
    with pytest.raises(PlannerError, match="not JSON"):
        planner.expand(REQUEST)
    chat_server.answers.append((200, {"unexpected": True}))
    with pytest.raises(PlannerError, match="did not answer a chat completion"):
        planner.expand(REQUEST)
    chat_server.answers.append((200, json.dumps({**SPEC, "mood": "happy"})))
    with pytest.raises(PlannerError, match=r"unknown keys \['mood'\]"):
        planner.expand(REQUEST)
    chat_server.answers.append((200, json.dumps({**SPEC, "role": "meme"})))
    with pytest.raises(PlannerError, match="invalid spec: unknown role 'meme'"):
        planner.expand(REQUEST)
    reworded = {**SPEC, "layout": [{"position": "top", "text": "SUMMER SALE!"},
                                   {"position": "bottom", "text": "50% OFF"}]}
    chat_server.answers.append((200, json.dumps(reworded)))
    with pytest.raises(PlannerError, match=r"dropped or changed the quoted texts \['SUMMER SALE'\]"):
        planner.expand(REQUEST)


def test_openai_planner_unreachable_and_config_errors():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(PlannerError, match="unreachable"):
        OpenAIChatPlanner(base_url=f"http://127.0.0.1:{port}/v1", model="m", timeout_s=2).expand("a cat")
    with pytest.raises(InputError, match="http"):
        OpenAIChatPlanner(base_url="127.0.0.1:8000", model="m")
    with pytest.raises(InputError, match="base URL and a model"):
        make_planner("openai")
    with pytest.raises(InputError, match="unknown planner 'gpt'"):
        make_planner("gpt")
    assert isinstance(make_planner(), RuleBasedPlanner)
