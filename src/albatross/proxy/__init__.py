"""Decisions about a request and the forwarding of it to a target (see ``forward``)."""
