"""Integrations with other engines (each imports its engine on first use): :mod:`sentrs.integrations.ray`."""
