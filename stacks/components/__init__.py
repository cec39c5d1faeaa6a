"""One ComponentResource per layer, each in a file named after what it builds."""
