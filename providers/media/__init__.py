"""Media: format facts (formats), local makers (synthesis), the prober and posters (probe)."""
