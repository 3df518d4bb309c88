"""Client fixtures: the same tests drive DecisionClient and AsyncDecisionClient.

``make_client(target, **kwargs)`` returns a client with the blocking API. For
``aio=True`` it wraps an ``AsyncDecisionClient`` whose coroutines run on one event loop
per test, so every test body is written once and runs against both clients.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator
from typing import Any, Self

import pytest

from client import AsyncDecisionClient, DecisionClient


class BlockingAsyncClient:
    """An ``AsyncDecisionClient`` driven through ``asyncio.Runner``: same calls, blocking."""

    def __init__(self, runner: asyncio.Runner, target: str, **kwargs: Any) -> None:
        self._runner = runner

        async def build() -> AsyncDecisionClient:
            return AsyncDecisionClient(target, **kwargs)

        self.wrapped = runner.run(build())

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.wrapped, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def call(*args: Any, **kwargs: Any) -> Any:
            return self._runner.run(attribute(*args, **kwargs))

        return call

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture(params=[False, True], ids=["sync", "aio"], name="aio")
def fixture_aio(request: pytest.FixtureRequest) -> bool:
    """Whether the test runs against the asyncio client."""
    return bool(request.param)


@pytest.fixture
def make_client(aio: bool) -> Iterator[Callable[..., Any]]:
    """Build clients of the current kind; every one is closed after the test."""
    made: list[Any] = []
    runner = asyncio.Runner() if aio else None

    def make(target: str, **kwargs: Any) -> Any:
        client = (
            BlockingAsyncClient(runner, target, **kwargs)
            if runner is not None
            else DecisionClient(target, **kwargs)
        )
        made.append(client)
        return client

    try:
        yield make
    finally:
        for client in made:
            client.close()
        if runner is not None:
            runner.close()


@pytest.fixture
def client(make_client: Callable[..., Any], demo_server: Any) -> Any:
    """A client of the current kind for the demo server, with its api key and admin token."""
    return make_client(
        demo_server.target,
        api_key=demo_server.api_key,
        admin_token=demo_server.admin_token,
        decide_timeout=5.0,
    )
