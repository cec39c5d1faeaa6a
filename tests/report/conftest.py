from __future__ import annotations

import pytest

from stacks.design.approval import plan_document
from stacks.design.loader import load_and_design

EXAMPLES = ("ke-staging", "br-staging", "de-staging", "in-staging")


def document_for(stack: str) -> dict:
    partnership, design = load_and_design(stack)
    return plan_document(stack, partnership, design)


@pytest.fixture(scope="session")
def documents() -> dict[str, dict]:
    return {stack: document_for(stack) for stack in EXAMPLES}
