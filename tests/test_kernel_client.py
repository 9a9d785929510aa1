"""The grading worker's kernel client (grader.execution.kernel_client): every worker's kernel
gets it, with or without a sandbox, and a kernel that died is reported at once."""

from __future__ import annotations

import asyncio

import pytest
from jupyter_client.manager import AsyncKernelManager

from grader.execution.kernel_client import PromptKernelClient
from grader.execution.worker import TrackingExecute

pytestmark = pytest.mark.slow  # starts a kernel


def test_a_kernel_nbclient_starts_gets_the_prompt_client():
    """--unsafe: no sandbox hands nbclient a kernel manager; the one it makes has it too."""
    executor = TrackingExecute(kernel_name="python3")
    assert executor.create_kernel_manager().client_factory is PromptKernelClient


async def wait_for_a_kernel_that_died() -> str:
    km = AsyncKernelManager(kernel_name="python3", client_factory=PromptKernelClient)
    await km.start_kernel()
    client = km.client()
    client.start_channels()
    try:
        await km.shutdown_kernel(now=True)
        with pytest.raises(RuntimeError) as raised:
            await client.wait_for_ready(timeout=60)
        return str(raised.value)
    finally:
        client.stop_channels()


def test_a_kernel_that_died_is_reported_not_waited_for():
    """A worker whose kernel dies while starting learns it at once, not after the timeout."""
    assert (
        asyncio.run(wait_for_a_kernel_that_died()) == "Kernel died before replying to kernel_info"
    )
