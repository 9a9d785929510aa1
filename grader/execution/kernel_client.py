"""The worker's kernel client: jupyter_client's, ready as soon as the kernel is.

jupyter_client's `wait_for_ready` ends by draining IOPub until it has been silent for 0.2 s:
a fixed 0.2 s of an idle grading slot per submission, to drop start-up messages that
nbclient ignores anyway (it reads only the messages whose parent is its own request). This
client waits for what readiness means, as jupyter_client does, and no longer: the kernel's
kernel_info reply on the shell channel and a message on IOPub after it (IOPub's
subscription is in place, or the first cell's messages could be lost).
"""

from __future__ import annotations

import time
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient


class PromptKernelClient(AsyncKernelClient):
    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
                if reply["msg_type"] == "kernel_info_reply":
                    await self.iopub_channel.get_msg(timeout=0.2)  # Empty: not subscribed yet
                    self._handle_kernel_info_reply(reply)
                    return
            except Empty:
                pass
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")
