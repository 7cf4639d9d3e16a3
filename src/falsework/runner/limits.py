"""What one task may cost the runner: ``each`` iterations, log lines, the whole
log, and what a dry run sends back; and how many renders run at once.
Configured by the operator (``config.py``, docs/operations.md), made into these
plain values by ``falsework.wiring``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RunLimits:
    max_each: int = 1_000
    """Iterations of one step's ``each``."""
    max_log_line: int = 65_536
    """Characters of one event's text (a log line, a step's error); longer is cut."""
    max_task_log: int = 10_000_000
    """Characters of the action log lines of one task; later lines are dropped."""
    dry_run_max_files: int = 1_000
    """Files a dry run sends back."""
    dry_run_max_bytes: int = 7_000_000
    """Bytes of the files a dry run sends back (before base64: 9.3 MB after, inside
    the 10 MB of ``dry_run_max_result``)."""
    render_threads: int = 2
    """Threads rendering expressions off the event loop (renders at once)."""

    def clip(self, text: str) -> str:
        """``text`` cut to :attr:`max_log_line` characters, saying how much was cut."""
        if len(text) <= self.max_log_line:
            return text
        cut = len(text) - self.max_log_line
        return f"{text[: self.max_log_line]}… [{cut:,} more characters cut]"
