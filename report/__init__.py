"""The ministry report: a localized, illustrated, self-contained HTML document and its PDF."""
