"""The report's "on its own kernels" column: what `edgecompress verify` found when it ran an
artifact on its target's ISA under emulation (artifacts/<target>/verify.json, written by
compress/evaluation/verify.py). A parity check, never a latency."""

from __future__ import annotations

from pathlib import Path

from edgecompress.errors import UserError
from edgecompress.rundir import VERIFY_FILE, read_object


def read_kernels(folder: Path) -> dict | None:
    """The verify record beside an artifact, or None when there is none (the report then shows
    no cell; nothing is invented). A run that could not emulate records {"skipped": reason}
    instead of profiles. Raises UserError naming a verify.json that is not such a record."""
    path = Path(folder) / VERIFY_FILE
    record = read_object(path)
    if not record and not path.exists():
        return None
    if isinstance(record.get("skipped"), str):
        return record
    profiles = record.get("profiles")
    if not isinstance(profiles, list) or not profiles or not all(
            isinstance(p, dict) and isinstance(p.get("agreement"), (int, float))
            and not isinstance(p.get("agreement"), bool) for p in profiles):
        raise UserError(f"{path} has neither 'skipped' nor a list of 'profiles' with numeric "
                        "'agreement': not a verify record")
    return record


def kernels_cell(record: dict | None) -> str:
    """'arm64 cortex-a76 100.0 % / armv9-i8mm 99.5 % agree, acc 81.0 %, 200 rows' (the lowest
    emulated accuracy), '… FAILS the gate' when agreement fell below it, 'not checked: <reason>'
    when the run could not emulate; '—' without a record."""
    if not record:
        return "—"
    if record.get("skipped"):
        return f"not checked: {record['skipped']}"
    agreements = " / ".join(f"{p.get('cpu')} {p['agreement']:.1%}" for p in record["profiles"])
    accuracies = [p["accuracy"]["accuracy"] for p in record["profiles"]
                  if isinstance(p.get("accuracy"), dict)]
    accuracy = f", acc {min(accuracies):.1%}" if accuracies else ""
    verdict = "" if record.get("passed", True) else ", FAILS the gate"
    return f"arm64 {agreements} agree{accuracy}, {record.get('rows')} rows{verdict}"
