"""The HTTP vocabulary shared by the HTTP/1.1 and HTTP/2 front ends."""
