"""The Ansible roles, shipped in the wheel as the data package `sovereign_roles` (see pyproject.toml).

A package only so importlib.resources finds it, installed or editable; it holds no code.
"""
