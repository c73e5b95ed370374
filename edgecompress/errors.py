"""Errors shared by every package.

`UserError` is bad input from the user (a missing file, an unknown name, a malformed profile): the
CLI prints its message as one line and exits with code 2. `ParityError` means an exported artifact
does not reproduce torch's outputs; the artifact is not kept.
"""


class UserError(ValueError):
    """Bad input from the user; the message is one line that names the problem."""


class ParityError(ValueError):
    """An exported artifact's outputs differ from torch's beyond the profile's tolerance."""

    def __init__(self, artifact: str, diffs: dict[str, float], tolerance: float,
                 detail: str | None = None, facts: dict | None = None):
        self.artifact = artifact
        self.diffs = diffs
        self.tolerance = tolerance
        self.facts = facts  # what the gate measured and its bounds (refused.json's "gate")
        worst = detail or ", ".join(f"{name}: max |diff| {value:.3g} > {tolerance:g}"
                                    for name, value in diffs.items())
        super().__init__(f"{artifact} failed parity: {worst}")
