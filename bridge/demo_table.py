"""Render the demo's sample runs as a plain-text table with a summary."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.demo_checks import rejection_text

if TYPE_CHECKING:
    from bridge.demo_checks import SampleRun

HEADINGS = ("RESULT", "SAMPLE", "FORMAT", "HTTP", "KIND", "SCORE", "OPEN ELMS CALL")
OUTBOUND_HEADINGS = (
    "SAMPLE",
    "OUTBOUND EVENT",
    "USER",
    "LEARNING",
    "STATUS",
    "SCORE",
    "CAUSE",
    "RECEIVED",
)


def render_table(runs: list[SampleRun]) -> list[str]:
    """Return the table lines: one row per sample, one more per further event.

    The sample's first event shares its row; further events, and a request
    the bridge refused, follow on rows of their own under it.
    """
    rows: list[tuple[str, ...]] = [HEADINGS]
    for run in runs:
        rows.extend(sample_rows(run))

    lines = format_rows(rows)
    lines.append("")
    lines.extend(outbound_lines(runs))
    lines.append("")
    lines.extend(summary_lines(runs))
    return lines


def outbound_lines(runs: list[SampleRun]) -> list[str]:
    """Return the table of outbound events per sample, and a count line.

    RECEIVED says how many verified deliveries the demo's subscriber got.
    """
    rows: list[tuple[str, ...]] = [OUTBOUND_HEADINGS]
    for run in runs:
        for index, item in enumerate(run.outbound):
            sample = run.expectation.file if index == 0 else ""
            received = "yes" if item.received == 1 else f"{item.received} times"
            cells = (item.type, item.user, item.learning, item.status)
            rows.append(
                (sample, *cells, format_score(item.score), item.cause, received)
            )

    produced = [run for run in runs if run.outbound]
    total = sum(len(run.outbound) for run in runs)
    received_once = sum(
        1 for run in runs for item in run.outbound if item.received == 1
    )
    count = (
        f"{total} outbound events from {len(produced)} samples "
        f"({len(runs) - len(produced)} produced none); "
        f"{received_once} received once with a verified signature"
    )
    if total == 0:
        return [count]
    return [*format_rows(rows), "", count]


def format_rows(rows: list[tuple[str, ...]]) -> list[str]:
    """Return rows with every column but the last padded to its widest cell."""
    columns = len(rows[0]) - 1
    widths = [max(len(row[i]) for row in rows) for i in range(columns)]
    return [format_row(row, widths) for row in rows]


def sample_rows(run: SampleRun) -> list[tuple[str, ...]]:
    """Return the rows of one sample."""
    verdict = "ok" if run.ok else "FAIL"
    http = ", ".join(str(answer.status) for answer in run.answers)
    head = (verdict, run.expectation.file, run.expectation.format, http)
    blank = ("", "", "", "")

    cells = [(e.kind, format_score(e.score), e.call) for e in run.events]
    rejection = rejection_text(run.answers)
    if rejection:
        cells.append(("-", "-", f"none (rejected {rejection})"))
    if not cells:
        cells.append(("-", "-", "none (no event)"))
    return [(head if index == 0 else blank) + cell for index, cell in enumerate(cells)]


def format_row(row: tuple[str, ...], widths: list[int]) -> str:
    """Return one row with every cell but the last padded to its column."""
    padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
    return "  ".join([*padded, row[-1]]).rstrip()


def format_score(score: float | None) -> str:
    """Return a score as shown: whole numbers without decimals, none as ``-``."""
    if score is None:
        return "-"
    return f"{score:g}" if float(score).is_integer() else f"{score:.2f}"


def summary_lines(runs: list[SampleRun]) -> list[str]:
    """Return the count line and one line per difference found."""
    failed = [run for run in runs if not run.ok]
    lines = [
        f"{len(runs)} samples: {len(runs) - len(failed)} as expected, {len(failed)} not"
    ]
    for run in failed:
        lines.extend(
            f"FAIL {run.expectation.file}: {problem}" for problem in run.problems
        )
    return lines
