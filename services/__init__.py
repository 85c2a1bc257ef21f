"""The Soul KG CRM services: one package each, started by `python -m services.<name>.server`."""
