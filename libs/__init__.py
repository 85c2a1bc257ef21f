"""Shared code of the Soul KG CRM services: written once, used by every service."""
