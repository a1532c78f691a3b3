"""What a send run reports: the state of an issue's deliveries afterwards, and progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

SendProgress = Callable[[str, str], None]  # (address, outcome), called from worker threads


@dataclass(frozen=True)
class SendReport:
    """The state of an issue's deliveries after a send run."""

    issue_id: int
    sent: int  # accepted by the server during this run
    already_sent: int  # accepted during earlier runs
    failed: int  # permanently refused (all runs)
    to_retry: int  # still pending: run `digest send` again
    uncertain: int  # left "sending" by a crash or lost reply; never resent automatically
    skipped: int = 0  # the subscriber left before their delivery
    error: str | None = None  # a problem that stopped the run (login refused, ...)
    interrupted: bool = False
    # Readers this run gave up on: refused for now for [smtp].give_up_hours ("address: why").
    gave_up: tuple[str, ...] = ()

    @classmethod
    def from_counts(
        cls,
        issue_id: int,
        counts: dict[str, int],
        *,
        sent_now: int,
        error: str | None = None,
        interrupted: bool = False,
        gave_up: tuple[str, ...] = (),
    ) -> SendReport:
        """Build the report from the ledger's counts per status after a run."""
        return cls(
            issue_id=issue_id,
            sent=sent_now,
            already_sent=counts.get("sent", 0) - sent_now,
            failed=counts.get("failed", 0),
            to_retry=counts.get("pending", 0),
            uncertain=counts.get("sending", 0),
            skipped=counts.get("skipped", 0),
            error=error,
            interrupted=interrupted,
            gave_up=gave_up,
        )

    def __str__(self) -> str:
        return (
            f"sent {self.sent}, already sent {self.already_sent}, failed {self.failed}, "
            f"to retry {self.to_retry}, uncertain {self.uncertain}, skipped {self.skipped}"
            + (" (stopped early)" if self.interrupted else "")
        )

    @property
    def exit_code(self) -> int:
        """Return 0 when done, 3 when deliveries remain to retry, 4 when some are uncertain."""
        if self.to_retry or self.error or self.interrupted:
            return 3
        if self.uncertain:
            return 4
        return 0
