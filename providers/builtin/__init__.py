"""One module per built-in provider, holding only that provider's facts. Found by name
through providers.registry."""
