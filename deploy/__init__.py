"""Running the service in production on one VM: ``python -m deploy.vm`` (docs/deploy.md)."""
