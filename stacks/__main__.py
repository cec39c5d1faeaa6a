"""Pulumi program: a country's partnership, from stack config to built layers.

    pulumi up -s <country>-<env>        (stack config: countries/Pulumi.<country>-<env>.yaml)
"""

from stacks.program import main

main()
