"""Everything that touches sockets and the event loop: listeners, lifecycle, the demo."""
