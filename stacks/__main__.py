"""Pulumi program: a country's partnership, from stack config to built layers.

    pulumi up -s <country>-<env>        (stack config: countries/Pulumi.<country>-<env>.yaml)
"""

import pulumi

from stacks.design.loader import CONFIG_KEY, InputError, validate_mapping
from stacks.design.sizing import SizingErrors
from stacks.program import build

stack = pulumi.get_stack()
try:
    partnership = validate_mapping(
        pulumi.Config("sovereign").require_object("partnership"),
        f"countries/Pulumi.{stack}.yaml ({CONFIG_KEY})",
    )
    build(partnership)
except (InputError, SizingErrors) as exc:
    # The engine prints this message as is; a traceback would bury it.
    raise pulumi.RunError(str(exc)) from None
