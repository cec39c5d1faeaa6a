"""The pure design model: partnership, catalog, loader, sizing, IP plan, costs, fabric plan, summary. No Pulumi import."""
