"""Shared server bootstrap: every service starts through `libs.server.bootstrap`."""
