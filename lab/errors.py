"""Errors the lab raises; the CLI maps each class to one documented exit code."""

from __future__ import annotations


class LabError(Exception):
    """An operation on the lab failed (exit code 1). The message is one line for people."""

    exit_code = 1


class LabInputError(LabError, ValueError):
    """The caller asked for something invalid, e.g. a bad lab name (exit code 2)."""

    exit_code = 2


class LabEnvironmentError(LabError):
    """The host lacks what the lab needs: root, LXC, a package mirror (exit code 3)."""

    exit_code = 3
