"""Node acceptance: check over SSH (or locally) that each node is what its roles promise.

Public API: `verify(inventory, ...)` / `verify_local(vars_file, ...)` -> `VerifyReport`.
"""

from nodeconfig.acceptance.report import ReportRow, VerifyReport
from nodeconfig.acceptance.run import VerifyError, VerifyInputError, verify, verify_local

__all__ = ["ReportRow", "VerifyError", "VerifyInputError", "VerifyReport", "verify", "verify_local"]
