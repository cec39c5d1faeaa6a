"""The Jinja2 starters (base + expand/ + greenfield/) and the project files `sovereign init` writes,
shipped in the wheel as the data package `sovereign_templates` (see pyproject.toml).

A package only so importlib.resources finds it, installed or editable; it holds no code.
"""
