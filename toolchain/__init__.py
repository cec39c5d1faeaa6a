"""The pinned Pulumi engine, language host, kubernetes plugin and Kubernetes binaries, built from Go modules."""
