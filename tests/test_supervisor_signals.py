"""fork_child and SignalPipe with real forks and real signals.

A worker is forked with every signal blocked; it releases the parent's signal pipe
and only then unblocks. A SIGTERM the parent sends in that window must still stop
the child once it unblocks (it was once discarded by SIG_IGN, so the worker kept
serving until its kill timeout).
"""

from __future__ import annotations

import os
import signal

from qactuar.supervisor import SignalPipe, fork_child


def test_a_sigterm_pending_while_the_child_drops_the_parents_signal_pipe_still_stops_it(
) -> None:
    pipe = SignalPipe((signal.SIGTERM, signal.SIGINT, signal.SIGHUP))
    try:
        def cleanup() -> None:
            # The parent's SIGTERM arrives while the new child still blocks signals...
            os.kill(os.getpid(), signal.SIGTERM)
            assert signal.SIGTERM in signal.sigpending()
            # ...and before the child lets go of the parent's pipe.
            pipe.close()

        pid = fork_child(lambda: 0, cleanup)
        _, status = os.waitpid(pid, 0)
        # Exiting 0 would mean run() went on serving: the SIGTERM was lost.
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM, status
    finally:
        pipe.close()


def test_the_parent_closing_its_signal_pipe_ignores_late_stop_signals() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    pipe = SignalPipe((signal.SIGTERM, signal.SIGCHLD))
    try:
        pipe.close()
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)
