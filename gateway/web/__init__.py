"""The web surfaces: the portal (pages), the JSON APIs, the HTTP server protocol."""
