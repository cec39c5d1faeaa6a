"""Node acceptance: check over SSH (or locally) that each node is what its roles promise.

Public API: `verify(inventory, ...)` / `verify_local(vars_file, ...)` -> `VerifyReport`.
"""

from nodeconfig.acceptance.report import ReportRow, VerifyReport
from nodeconfig.acceptance.run import VerifyError, verify, verify_local

__all__ = ["ReportRow", "VerifyError", "VerifyReport", "verify", "verify_local"]
