"""The lab's BMCs: sushy-tools' Redfish emulator, with its sqlite connections closed after use.

Why: the emulator keeps its state in sqlite (`memoize.PersistentDict`) and opens a connection for
every read and write of it, in `with sqlite3.connect(...)`, which commits but does not close. In
CPython 3.11 a connection and its statement cache refer to each other, so each one stays open
until the cyclic garbage collector runs: at 300 systems and 64 sessions at once the emulator held
10,000-20,000 files open and failed requests with "Too many open files" at this machine's limit of
20,000, which no process here may raise (no CAP_SYS_RESOURCE). A real BMC has no such limit to
hit. Only the connections' lifetime changes: every Redfish request, the state and the emulator's
timings (power changes 1-11 s late) are sushy-tools' own.
"""

import sqlite3
import sys
import types

from sushy_tools.emulator import memoize
from sushy_tools.emulator.main import main


class _ClosedOnExit(sqlite3.Connection):
    """A connection that `with` commits (or rolls back) and then closes."""

    def __exit__(self, *exc):  # type: ignore[no-untyped-def]
        try:
            return super().__exit__(*exc)
        finally:
            self.close()


def _connect(*args, **kwargs):  # type: ignore[no-untyped-def]
    return sqlite3.connect(*args, factory=_ClosedOnExit, **kwargs)


if __name__ == "__main__":
    memoize.sqlite3 = types.SimpleNamespace(connect=_connect, OperationalError=sqlite3.OperationalError)
    sys.exit(main())
