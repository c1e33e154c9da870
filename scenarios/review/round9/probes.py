"""Round-9 probes written in phase 2, after the docs: a realistic RPC bug the built-in invariants
judge by the wrong name (finding 4 of docs/reviews/outside-user-9.md).

``RpcCancelKeepsId``: the caller's cancel stops the call's timer but leaves its id pending, so a
lost connection (or the late answer) fires the cancelled Deferred again. Raised out of the ``lose``
operation, the ``AlreadyCalledError`` is reported as ``errors.operation`` with the advice to declare
the type in ``Operation(raises=...)``; declared so (or any base of it), the double fire passes.
"""

from __future__ import annotations

from twisted.internet.defer import AlreadyCalledError

from harness import Operation, Target

from . import rpc
from .targets import RPC_TIMEOUT_MS, RpcGate, rpc_refusal_legit


class RpcCancelKeepsId(rpc.RpcClient):
    """Bug: a cancelled call's id stays pending (only its timer is stopped)."""

    def _cancelled(self, request_id: int) -> None:
        entry = self._pending.get(request_id)
        if entry is not None and entry[1].active():
            entry[1].cancel()


def _target(raises: tuple[type[BaseException], ...]) -> Target:
    return Target(build=lambda clock: RpcGate(clock, RpcCancelKeepsId), cancellable="detach",
                  timeout_ms=RPC_TIMEOUT_MS, timeout_from="submit", timeout_error=rpc.RpcTimeout,
                  timeout_detaches=True, rejects=(rpc.ConnectionDone, rpc.ClientClosed),
                  rejects_only_while=rpc_refusal_legit, stop_cancels_timers=True,
                  operations={"lose": Operation(lambda g: g.client.connection_lost(), raises=raises)},
                  description="rpc: a cancelled id stays pending")


rpc_cancel_keeps_id = _target(())
# what the message advises: the double fire out of lose() then passes
rpc_cancel_keeps_id_raises_declared = _target((AlreadyCalledError,))
