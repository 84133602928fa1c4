"""The LATM engine: tool maker, tool user, dispatcher."""
